"""The UIs' CSRF check: asgi-csrf (a signed double-submit token: a cookie and the same value in a hidden form
field, signed with itsdangerous over the app's secret) as a Starlette middleware class, answering with the
app's own pages: 403 for a refused form, 400 for one that cannot be read."""

from collections.abc import Container
from typing import Any

import structlog
from asgi_csrf import asgi_csrf_decorator
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from servicekit.middleware import BodyTooLarge
from uikit.pages import ErrorPage

log = structlog.get_logger()

_PASSED = "uikit.csrf_passed"
# Where asgi-csrf puts the function that gives (and, on first use, sets the cookie of) this request's token.
_SCOPE_KEY = "csrftoken"


class _EveryPath:
    """asgi-csrf lets a POST without any cookie through unless its path is "always protected": this says
    every path is (asgi-csrf asks ``path in always_protect``)."""

    def __contains__(self, path: object) -> bool:
        return True


EVERY_PATH: Container[str] = _EveryPath()


def csrf_token(request: Request) -> str | None:
    """The token for this request's forms (None outside the CSRF middleware: the 413 and crash pages)."""
    token = request.scope.get(_SCOPE_KEY)
    return str(token()) if callable(token) else None


class CsrfMiddleware:
    """Any method but GET, HEAD, OPTIONS and TRACE needs the token in ``form_field`` (or the X-CSRFToken
    header); a refusal is the app's 403 page with ``refused_message`` and nothing behind it runs. asgi-csrf
    lets a request without any cookie through, except to a path in ``always_protect`` (every path by
    default). It reads the body before anything else, so the body cap goes outside this; a body it cannot
    read (not UTF-8, multipart without a boundary or that does not parse) is the app's 400 page with
    ``unreadable_message``. (asgi-csrf finds a multipart form's token only in a field named ``csrftoken``.)"""

    def __init__(
        self,
        app: ASGIApp,
        *,
        secret_key: str,
        signing_namespace: str,
        error_page: ErrorPage,
        refused_message: str,
        unreadable_message: str,
        cookie_name: str = "csrftoken",
        form_field: str = "csrftoken",
        cookie_secure: bool = True,
        cookie_samesite: str = "Lax",
        always_protect: Container[str] = EVERY_PATH,
    ) -> None:
        self.app = app
        self.error_page = error_page
        self.unreadable_message = unreadable_message

        async def reached(scope: Scope, receive: Receive, send: Send) -> None:
            scope[_PASSED].append(True)  # (asgi-csrf passes a copy of the scope: the list is the same)
            await app(scope, receive, send)

        async def refuse(scope: Scope, send: Send, message_id: object) -> None:
            log.info("csrf_refused", reason=str(message_id))
            await error_page(scope, 403, refused_message)(scope, _no_body, send)

        self._wrapped: Any = asgi_csrf_decorator(
            cookie_name=cookie_name,
            form_input=form_field,
            signing_secret=secret_key,
            signing_namespace=signing_namespace,
            always_protect=always_protect,
            cookie_secure=cookie_secure,
            cookie_samesite=cookie_samesite,
            send_csrf_failed=refuse,
        )(reached)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # In the scope itself, which is each request's own (uvicorn's scope["state"] may be shared).
        passed: list[bool] = []
        scope[_PASSED] = passed
        try:
            await self._wrapped(scope, receive, send)
        except BodyTooLarge:
            raise  # the body cap, just outside, answers 413
        except Exception:
            if passed:
                raise  # the app's own failure, past the check: the crash page's to handle
            # asgi-csrf reads the body itself before anything else can look at it, and trips on what it did
            # not expect: a url-encoded body that is not UTF-8 (UnicodeDecodeError), multipart/form-data
            # without a boundary (IndexError), a multipart body python-multipart cannot parse (ValueError).
            # Nothing ran yet, so the form is simply refused.
            log.info("form_unreadable", path=scope.get("path"))
            await self.error_page(scope, 400, self.unreadable_message)(scope, _no_body, send)


async def _no_body() -> dict[str, Any]:
    """The ``receive`` for a page answered after the body was read (a Response never calls it)."""
    return {"type": "http.disconnect"}
