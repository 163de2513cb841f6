"""The error pages the kit's middleware answers with: each app renders its own (its template, its titles)
through one ``ErrorPage``; the kit decides when, with which status and why."""

from collections.abc import Callable

import structlog
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicekit.middleware import BodySizeLimit

log = structlog.get_logger()

# (scope, status, message) -> the app's HTML error page. Middleware calls it, where there may be no Request
# yet, so it takes the scope; the app picks the title for the status.
ErrorPage = Callable[[Scope, int, str], Response]


def request_id(scope: Scope) -> str:
    """This request's id (servicekit's RequestContextMiddleware puts it in the scope's state)."""
    return str(scope.get("state", {}).get("request_id", ""))


class HtmlBodySizeLimit(BodySizeLimit):
    """servicekit's body cap (refused before anything reads the body, a chunked one at the cap) answering with
    the app's 413 page. Place it outside whatever reads the body (CSRF, the routes) and inside the crash page,
    which would otherwise take BodyTooLarge for a crash."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, error_page: ErrorPage, message: str) -> None:
        def too_large(scope: Scope, _max_bytes: int) -> Response:
            return error_page(scope, 413, message)

        super().__init__(app, max_bytes, too_large=too_large)


class CrashPage:
    """A crash becomes the app's HTML 500 page with the request id (never a stack trace). Pure ASGI; it sits
    inside servicekit's RequestContextMiddleware, which logs the request and its id, and outside everything
    else, so a crash in a middleware (the session, CSRF) gets the page too."""

    def __init__(
        self, app: ASGIApp, *, error_page: ErrorPage, message: str = "Please try again in a moment."
    ) -> None:
        self.app = app
        self.error_page = error_page
        self.message = message

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("request_failed", method=scope.get("method"), path=scope.get("path"))
            if not started:
                await self.error_page(scope, 500, self.message)(scope, receive, send)
