"""The error pages the kit's middleware answers with: each app renders its own (its template, its titles)
through one ``ErrorPage``; the kit decides when, with which status and why."""

from collections.abc import Callable

from starlette.responses import Response
from starlette.types import ASGIApp, Scope

from servicekit.middleware import BodySizeLimit

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
