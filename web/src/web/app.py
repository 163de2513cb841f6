"""create_app(): the web shop. Server-rendered pages over the gateway's GraphQL API; no JavaScript needed."""

from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.responses import Response
from starlette.types import Scope

from uikit.csrf import CsrfMiddleware
from uikit.frame import create_ui_app, finish_ui_app
from uikit.pages import request_id
from web.cart import Signer, format_price, stock_label
from web.checkout import status_label
from web.gateway import GatewayClient, GatewayError
from web.routes import CSRF_PROTECTED_PATHS, router
from web.settings import WebSettings, resolve_secret_key

HERE = Path(__file__).parent
# Autoescaping on for every template, whatever its file name.
templates = Jinja2Templates(env=Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=True))
templates.env.filters["price"] = format_price
templates.env.filters["stock_label"] = stock_label
templates.env.filters["order_status"] = status_label

_ERROR_TITLES = {
    400: "That request did not make sense",
    403: "That form could not be accepted",
    404: "Page not found",
    405: "That is not something this page can do",
    413: "That request is too large",
    422: "Please check what you entered",
    500: "Something went wrong on our side",
}


def render_error(
    request: Request, status: int, message: str, title: str | None = None, **extra: Any
) -> Response:
    return templates.TemplateResponse(
        request,
        "error.html",
        {
            "title": title or _ERROR_TITLES.get(status, "Something went wrong"),
            "message": message,
            "status": status,
            "request_id": request_id(request.scope),
            **extra,
        },
        status_code=status,
    )


def _plain_error_page(status: int, title: str, message: str, request_id: str) -> bytes:
    """For failures outside the app (CSRF, crashes): rendered without a Request object."""
    template = templates.get_template("error.html")
    return template.render(
        title=title, message=message, status=status, request_id=request_id, csrf_token=None, cart_count=0
    ).encode()


# No page of the shop may be framed (clickjacking "Place order"), and forms only post back to the shop.
CONTENT_SECURITY_POLICY = "default-src 'self'; frame-ancestors 'none'; form-action 'self'"


def error_page(scope: Scope, status: int, message: str) -> Response:
    """The shop's error page for the kit's middleware (uikit.pages.ErrorPage)."""
    body = _plain_error_page(
        status, _ERROR_TITLES.get(status, "Something went wrong"), message, request_id(scope)
    )
    return Response(body, status_code=status, media_type="text/html; charset=utf-8")


async def _on_gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    message = (
        "That link or form is not one this shop understands. Please start again from the product list."
        if exc.status == 400
        else "We could not reach our store just now. Your cart is safe; please try again in a moment."
    )
    response = render_error(request, exc.status, message, title=exc.title)
    if exc.status == 503:
        response.headers["Retry-After"] = str(exc.retry_after or 5)
    return response


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) and exc.status_code != 404 else None
    if exc.status_code == 404:
        message = "We could not find that page. It may have moved, or the link may be wrong."
    return render_error(request, exc.status_code, message or "That request could not be handled.")


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    return render_error(request, 422, "Some of what was sent is not valid.")


def create_app(settings: WebSettings | None = None) -> FastAPI:
    settings = settings or WebSettings()
    app = create_ui_app(
        settings,
        title="lockstock web shop",
        gateway=GatewayClient,
        gateway_timeout=httpx.Timeout(settings.gateway_timeout_s, connect=settings.gateway_connect_timeout_s),
        gateway_limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
        static_dir=HERE / "static",
    )
    secret_key = resolve_secret_key(settings)
    app.state.signer = Signer(secret_key)
    app.state.templates = templates
    app.add_exception_handler(GatewayError, _on_gateway_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.include_router(router)
    return finish_ui_app(
        app,
        settings,
        content_security_policy=CONTENT_SECURITY_POLICY,
        error_page=error_page,
        too_large_message="That form is larger than this shop accepts.",
        # CSRF right around the routes, inside the body cap: asgi-csrf reads the body first. Every shop POST
        # path is always protected, even for a browser without cookies.
        around_routes=[
            Middleware(
                CsrfMiddleware,
                secret_key=secret_key,
                signing_namespace="lockstock.web.csrf",
                error_page=error_page,
                refused_message="This form has expired or did not come from this shop. "
                "Go back, reload the page and try again.",
                unreadable_message="The form could not be read. Go back, reload the page and try again.",
                cookie_secure=settings.cookie_secure,
                cookie_samesite="Lax",
                always_protect=CSRF_PROTECTED_PATHS,
            )
        ],
    )
