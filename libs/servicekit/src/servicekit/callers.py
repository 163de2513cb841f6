"""Which apps may call a service: each caller proves who it is with its own token (``Authorization: Bearer``).

A service declares its policy once, in its ``api.py`` (``CALLERS = allow(reads=[...], writes=[...])``), and
``create_service_app`` enforces it in front of every route before anything else runs (no body is read, no
session is opened), so a refused request changes nothing. Health and metrics are open: orchestrators and
Prometheus scrape them without a credential.

The credentials are settings: ``caller_tokens`` (the tokens this app accepts, by caller name) and
``service_token`` (the one this app sends to the services it calls). ``task up`` generates one per calling app
into .data/service-credentials.json; compose takes them from .env. See docs/adr/0007.
"""

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import structlog
from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

from servicekit.errors import problem_body

log = structlog.get_logger()

# Nothing in these is worth a credential, and their callers (probes, Prometheus) have none.
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The web shop and the admin call the gateway with a person's own bearer token in Authorization, so they prove
# who they are in a header of their own.
CALLER_HEADER = "X-Lockstock-Caller"


def _digest(token: str) -> bytes:
    # Hashing first makes every comparison the same length, so not even a token's length leaks through timing.
    return hashlib.sha256(token.encode()).digest()


def identify_caller(token: str | None, accepted: Mapping[str, SecretStr]) -> str | None:
    """The name of the caller whose token this is, or None. Compared in constant time against every accepted
    token (no early exit), so the time taken says nothing about which token came close."""
    if not token:
        return None
    presented = _digest(token)
    found = None
    for name, secret in accepted.items():
        expected = secret.get_secret_value()
        if hmac.compare_digest(presented, _digest(expected)) and expected:
            found = name
    return found


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; None for any other shape."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def caller_headers(token: SecretStr | str | None) -> dict[str, str]:
    """The header an app sends to prove who it is to a service (none if it has no token configured)."""
    if token is None:
        return {}
    value = token.get_secret_value() if isinstance(token, SecretStr) else token
    return {"Authorization": f"Bearer {value}"} if value else {}


@dataclass(frozen=True)
class CallerPolicy:
    """Who may read (GET, HEAD, OPTIONS) and who may write (every other method)."""

    reads: frozenset[str]
    writes: frozenset[str]

    def allows(self, caller: str, method: str) -> bool:
        return caller in (self.reads if method in READ_METHODS else self.writes)

    @property
    def callers(self) -> frozenset[str]:
        return self.reads | self.writes


def allow(*, reads: Iterable[str], writes: Iterable[str]) -> CallerPolicy:
    return CallerPolicy(reads=frozenset(reads), writes=frozenset(writes))


class CallerAuthMiddleware:
    """401 ``unauthenticated`` without a token this app knows, 403 ``caller_not_allowed`` for a known caller
    the policy does not allow for this method; otherwise the request goes on, with ``caller`` in every log
    line. Plain ASGI, in front of routing: the refusal comes before the body is read."""

    def __init__(self, app: ASGIApp, *, policy: CallerPolicy, accepted: Mapping[str, SecretStr]) -> None:
        self.app = app
        self.policy = policy
        # Only the tokens of callers the policy names: a token configured for nobody here opens nothing.
        self.accepted = {name: token for name, token in accepted.items() if name in policy.callers}
        if missing := sorted(policy.callers - self.accepted.keys()):
            log.warning("caller_tokens_missing", callers=missing)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        authorization = next(
            (value.decode("latin-1") for name, value in scope["headers"] if name == b"authorization"), None
        )
        caller = identify_caller(bearer(authorization), self.accepted)
        method = scope["method"]
        if caller is None:
            log.warning("caller_unauthenticated", method=method, path=scope["path"])
            await _refuse(
                send,
                401,
                "unauthenticated",
                "Unauthenticated",
                "Send 'Authorization: Bearer <token>' with a credential of a caller this service accepts.",
                [(b"www-authenticate", b'Bearer realm="lockstock"')],
            )
            return
        if not self.policy.allows(caller, method):
            log.warning("caller_not_allowed", caller=caller, method=method, path=scope["path"])
            await _refuse(
                send, 403, "caller_not_allowed", "Caller not allowed", f"{caller} may not {method} here.", []
            )
            return
        structlog.contextvars.bind_contextvars(caller=caller)
        await self.app(scope, receive, send)


async def _refuse(
    send: Send, status: int, code: str, title: str, detail: str, headers: list[tuple[bytes, bytes]]
) -> None:
    body = json.dumps(problem_body(status, code, title, detail)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
