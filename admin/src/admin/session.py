"""The admin's session and CSRF tokens.

The session is Starlette's SessionMiddleware: a cookie signed with itsdangerous (HttpOnly, SameSite=Strict,
Secure unless disabled). It holds the gateway token, so the admin app itself keeps no server-side state.

CSRF uses the synchronizer-token pattern as Flask-WTF does it: a random secret lives in the session, and each
form carries that secret signed and timestamped by itsdangerous. A POST is accepted only when the form's token
verifies and matches this session's secret (compared in constant time). starlette-csrf was considered and not
chosen: it reads the token only from a request header, which a plain HTML form without JavaScript cannot send.
"""

import hmac
import secrets
from typing import Any

from fastapi import Request
from itsdangerous import BadData, URLSafeTimedSerializer
from starlette.datastructures import FormData

CSRF_FIELD = "csrf_token"
_TOKEN_KEY = "token"
_CSRF_KEY = "csrf"
_USER_KEY = "user"
_FLASH_KEY = "flash"


class SessionError(Exception):
    """The request cannot go on in this session."""


class CsrfError(SessionError):
    """A form came without a valid CSRF token for this session."""


class NotSignedInError(SessionError):
    """An admin page was asked for without a session (or the gateway refused the session's token)."""


def _serializer(request: Request) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(request.app.state.secret_key, salt="admin-csrf")


def csrf_token(request: Request) -> str:
    """The token to put in this session's forms (making the session's secret on first use)."""
    secret = request.session.get(_CSRF_KEY)
    if not isinstance(secret, str):
        secret = secrets.token_urlsafe(32)
        request.session[_CSRF_KEY] = secret
    token: str = _serializer(request).dumps(secret)
    return token


async def checked_form(request: Request) -> FormData:
    """The posted form, once its CSRF token has been verified; raises CsrfError otherwise."""
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    expected = request.session.get(_CSRF_KEY)
    if not isinstance(sent, str) or not isinstance(expected, str):
        raise CsrfError
    try:
        secret = _serializer(request).loads(sent, max_age=request.app.state.settings.csrf_max_age_s)
    except BadData:
        raise CsrfError from None
    if not isinstance(secret, str) or not hmac.compare_digest(secret, expected):
        raise CsrfError
    return form


def sign_in(request: Request, *, token: str, username: str) -> None:
    # A new session on sign-in (new CSRF secret too): nothing from before sign-in carries over.
    request.session.clear()
    request.session[_TOKEN_KEY] = token
    request.session[_USER_KEY] = username


def sign_out(request: Request) -> None:
    request.session.clear()


def admin_token(request: Request) -> str:
    token = request.session.get(_TOKEN_KEY)
    if not isinstance(token, str) or not token:
        raise NotSignedInError
    return token


def signed_in_user(request: Request) -> str | None:
    user = request.session.get(_USER_KEY)
    return user if isinstance(user, str) else None


def flash(request: Request, message: str, kind: str = "success") -> None:
    """A one-time message shown on the next page (after a POST-redirect-GET)."""
    request.session.setdefault(_FLASH_KEY, []).append({"kind": kind, "message": message})


def take_flashes(request: Request) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = request.session.pop(_FLASH_KEY, [])
    return messages
