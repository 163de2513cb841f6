"""Plain ASGI middleware (it sits on every request's hot path, so no BaseHTTPMiddleware)."""

import contextvars
import json
import re
import time
import uuid
from collections.abc import Callable

import structlog
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicekit.errors import PROBLEM_JSON, problem_body

log = structlog.get_logger()

REQUEST_ID_HEADER = b"x-request-id"
# The address of whoever called this app. A UI that calls the gateway on a shopper's behalf forwards it
# (X-Forwarded-For), so the gateway's per-client limits apply per shopper, not to the UI as a whole.
_client_address: contextvars.ContextVar[str | None] = contextvars.ContextVar("client_address", default=None)


def client_address() -> str | None:
    return _client_address.get()


# A caller's request id is trusted only if it looks like one: it ends up in every log line.
_VALID_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:\-]{1,128}$")


def _incoming_request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == REQUEST_ID_HEADER and _VALID_REQUEST_ID.match(value):
            return str(value.decode("ascii"))
    return uuid.uuid4().hex


class RequestContextMiddleware:
    """Takes or makes the request id, binds it to every log line, echoes it, logs one line per request,
    and turns any unhandled exception into a masked problem+json 500 (never a stack trace)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        client = scope.get("client")
        _client_address.set(client[0] if client else None)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_request_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (REQUEST_ID_HEADER, request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        except Exception:
            log.exception("request_failed", method=scope["method"], path=scope["path"])
            if not response_started:
                await _send_internal_error(send_with_request_id)
        finally:
            log.info(
                "request_finished",
                method=scope["method"],
                path=scope["path"],
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )
            structlog.contextvars.clear_contextvars()


async def _send_internal_error(send: Send) -> None:
    body = json.dumps(
        problem_body(500, "internal_error", "Internal error", "An unexpected error occurred.")
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyTooLarge(Exception):
    """Raised from ``receive`` when a streamed body crosses the limit; middleware between BodySizeLimit and
    the app that catches exceptions must let it through."""


def _problem_too_large(scope: Scope, max_bytes: int) -> Response:
    return JSONResponse(
        problem_body(
            413, "payload_too_large", "Payload too large", f"The request body is over {max_bytes} bytes."
        ),
        status_code=413,
        media_type=PROBLEM_JSON,
    )


class BodySizeLimit:
    """Refuse request bodies over ``max_bytes`` before anything parses them (a megabyte of form fields or
    variables would otherwise be read, decoded and validated in full). A declared Content-Length over the
    limit is refused before reading; a chunked body is counted as it arrives and refused when it crosses it.

    ``too_large(scope, max_bytes)`` shapes the refusal for the app (problem+json by default; the gateway
    answers in GraphQL's error shape, the UIs with a page)."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        too_large: Callable[[Scope, int], Response] = _problem_too_large,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.too_large = too_large

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            # (A length of many digits is over any limit; int() of over 4,300 digits would raise.)
            if (
                name == b"content-length"
                and value.isdigit()
                and (len(value) > 18 or int(value) > self.max_bytes)
            ):
                await self._refuse(scope, receive, send)
                return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        log.info("request_body_too_large", max_bytes=self.max_bytes)
        await self.too_large(scope, self.max_bytes)(scope, receive, send)
