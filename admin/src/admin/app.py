"""create_app: the admin UI, a server-rendered client of the gateway's GraphQL API."""

from pathlib import Path
from urllib.parse import quote

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import Scope

from admin.access_pages import router as access_router
from admin.gateway import (
    BadRequestError,
    ForbiddenError,
    GatewayClient,
    GatewayError,
    RateLimitedError,
    UnauthenticatedError,
)
from admin.notification_pages import router as notification_router
from admin.routes import render, router
from admin.session import CsrfError, NotSignedInError, flash, sign_out
from admin.settings import AdminSettings, resolve_secret_key
from uikit.frame import create_ui_app, finish_ui_app

HERE = Path(__file__).parent
SESSION_COOKIE = "lockstock_admin"
# The chart is inline SVG, not a script or an inline style (admin/chart.py): nothing needs more than 'self'.
CONTENT_SECURITY_POLICY = "default-src 'self'; form-action 'self'; frame-ancestors 'none'"


_ERROR_TITLES = {413: "Request too large", 500: "Something went wrong"}


def error_page(scope: Scope, status: int, message: str) -> HTMLResponse:
    """The admin's error page for the kit's middleware (uikit.pages.ErrorPage). The crash page sits outside
    the session: if a crash came before the session was read, the page is rendered as for no one signed in."""
    context = {"title": _ERROR_TITLES.get(status, "Something went wrong"), "message": message}
    return render(Request({"session": {}, **scope}), "error.html", context, status_code=status)


def create_app(settings: AdminSettings | None = None) -> FastAPI:
    settings = settings or AdminSettings()
    app = create_ui_app(
        settings,
        title="lockstock admin",
        gateway=GatewayClient,
        gateway_timeout=httpx.Timeout(
            settings.gateway_timeout_s, connect=min(3.0, settings.gateway_timeout_s)
        ),
        gateway_limits=httpx.Limits(max_connections=50, max_keepalive_connections=10),
        static_dir=HERE / "static",
    )
    app.state.secret_key = resolve_secret_key(settings)
    app.include_router(router)
    app.include_router(notification_router)
    app.include_router(access_router)

    def to_sign_in(request: Request) -> RedirectResponse:
        target = request.url.path if request.method == "GET" else "/"
        if request.method == "GET" and request.url.query:
            target += "?" + request.url.query
        return RedirectResponse(f"/sign-in?next={quote(target, safe='')}", status_code=303)

    @app.exception_handler(NotSignedInError)
    async def not_signed_in(request: Request, exc: NotSignedInError) -> Response:
        return to_sign_in(request)

    @app.exception_handler(UnauthenticatedError)
    async def token_refused(request: Request, exc: UnauthenticatedError) -> Response:
        sign_out(request)
        flash(request, "Your session has ended. Please sign in again.", "error")
        return to_sign_in(request)

    @app.exception_handler(ForbiddenError)
    async def not_an_admin(request: Request, exc: ForbiddenError) -> Response:
        sign_out(request)
        flash(request, "That account is not an administrator.", "error")
        return to_sign_in(request)

    @app.exception_handler(CsrfError)
    async def csrf_refused(request: Request, exc: CsrfError) -> HTMLResponse:
        return render(
            request,
            "error.html",
            {
                "title": "Form expired",
                "message": "This form was not accepted: it is too old or did not come from this site. "
                "Nothing was changed. Go back, reload the page and try again.",
            },
            status_code=403,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> HTMLResponse:
        title = "Page not found" if exc.status_code == 404 else "Request not accepted"
        message = "There is no such page." if exc.status_code == 404 else "The request could not be handled."
        return render(
            request, "error.html", {"title": title, "message": message}, status_code=exc.status_code
        )

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> HTMLResponse:
        context = {"title": "Request not accepted", "message": "The address or form was not understood."}
        return render(request, "error.html", context, status_code=400)

    @app.exception_handler(BadRequestError)
    async def gateway_bad_request(request: Request, exc: BadRequestError) -> HTMLResponse:
        context = {
            "title": "Link not understood",
            "message": "This address was not understood; it may have been edited.",
        }
        return render(request, "error.html", context, status_code=400)

    @app.exception_handler(RateLimitedError)
    async def rate_limited(request: Request, exc: RateLimitedError) -> HTMLResponse:
        # The sign-in page says it next to the form; any other page the gateway refused for now says so here.
        wait = f"in {exc.retry_after} seconds" if exc.retry_after else "in a moment"
        context = {
            "title": "Too many requests",
            "message": f"The gateway asks to slow down: try again {wait}.",
        }
        response = render(request, "error.html", context, status_code=429)
        response.headers["Retry-After"] = str(exc.retry_after or 1)
        return response

    @app.exception_handler(GatewayError)
    async def gateway_down(request: Request, exc: GatewayError) -> HTMLResponse:
        response = render(
            request,
            "error.html",
            {
                "title": "The shop's back office is not answering",
                "message": "The request could not be completed. Please try again in a moment.",
            },
            status_code=503,
        )
        response.headers["Retry-After"] = str(exc.retry_after or 5)  # as the web shop answers its 503
        return response

    return finish_ui_app(
        app,
        settings,
        content_security_policy=CONTENT_SECURITY_POLICY,
        error_page=error_page,
        too_large_message="That form is larger than the admin accepts.",
        # Around the body cap: its page needs the session. The cookie is Secure, HttpOnly, SameSite=Strict.
        around_body_cap=[
            Middleware(
                SessionMiddleware,
                secret_key=app.state.secret_key,
                session_cookie=SESSION_COOKIE,
                max_age=settings.session_max_age_s,
                same_site="strict",
                https_only=settings.cookie_secure,
            )
        ],
    )
