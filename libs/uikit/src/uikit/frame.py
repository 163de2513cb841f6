"""The frame both server-rendered UIs (web shop, admin) share, as servicekit.app is the services' frame:

- ``create_ui_app``: logging, the one gateway HTTP client for the app's life (``app.state.gateway``),
  ``/healthz`` and ``/readyz`` (ready when the gateway answers), ``/static``, no API docs;
- ``finish_ui_app``: the middleware stack (request ids and the request log, the security headers, the crash
  page, the body cap with its 413 page, and the app's own middleware where it belongs), metrics, tracing.

What is the app's own stays in the app: its routes, its templates and titles (through ``ErrorPage``), how it
maps the gateway's answers to pages, its session and CSRF middleware."""

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Protocol

import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import SecretStr
from starlette.middleware import Middleware

from servicekit.graphql_client import gateway_http_client
from servicekit.logging import configure_logging
from servicekit.metrics import instrument_app
from servicekit.middleware import RequestContextMiddleware
from servicekit.tracing import setup_tracing, shutdown_tracing
from uikit.headers import SecurityHeaders
from uikit.pages import CrashPage, ErrorPage, HtmlBodySizeLimit


class UiSettings(Protocol):
    """What the frame reads from an app's settings (WebSettings, AdminSettings)."""

    @property
    def service_name(self) -> str: ...
    @property
    def log_level(self) -> str: ...
    @property
    def log_json(self) -> bool: ...
    @property
    def service_token(self) -> SecretStr | None: ...
    @property
    def gateway_url(self) -> str: ...
    @property
    def max_body_bytes(self) -> int: ...


class Gateway(Protocol):
    """The app's gateway client, as the frame needs it: for /readyz."""

    async def ready(self) -> bool: ...


health_router = APIRouter()


@health_router.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@health_router.get("/readyz", include_in_schema=False)
async def readyz(request: Request) -> JSONResponse:
    gateway: Gateway = request.app.state.gateway
    ready = await gateway.ready()
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": {"gateway": ready}},
        status_code=200 if ready else 503,
    )


def create_ui_app(
    settings: UiSettings,
    *,
    title: str,
    gateway: Callable[[httpx.AsyncClient, str], Gateway],
    gateway_timeout: httpx.Timeout,
    gateway_limits: httpx.Limits,
    static_dir: Path,
) -> FastAPI:
    """The app, its logging configured. ``gateway(http, settings.gateway_url)`` makes the app's client over
    the one shared httpx client (with the UI's credential, servicekit.graphql_client.gateway_http_client),
    as ``app.state.gateway`` for the app's life. Add routes and exception handlers, then ``finish_ui_app``."""
    configure_logging(settings.service_name, settings.log_level, json=settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with gateway_http_client(
            settings.service_token, timeout=gateway_timeout, limits=gateway_limits
        ) as http:
            app.state.gateway = gateway(http, settings.gateway_url)
            try:
                yield
            finally:
                shutdown_tracing(app.state.tracer_provider)

    app = FastAPI(title=title, lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.include_router(health_router)
    app.mount("/static", StaticFiles(directory=static_dir), name="static")
    return app


def finish_ui_app(
    app: FastAPI,
    settings: UiSettings,
    *,
    content_security_policy: str,
    error_page: ErrorPage,
    too_large_message: str,
    around_routes: Sequence[Middleware] = (),
    around_body_cap: Sequence[Middleware] = (),
) -> FastAPI:
    """The middleware, from the outside in: metrics; request ids and the request log; the security headers
    (so every answer below has them); the crash page; ``around_body_cap`` (e.g. the session, which the app's
    pages need); the body cap and its 413 page; ``around_routes`` (what reads the body, e.g. CSRF). Then
    tracing. Call it last: nothing may add middleware after it."""
    for middleware in reversed(around_routes):
        app.add_middleware(middleware.cls, *middleware.args, **middleware.kwargs)
    app.add_middleware(
        HtmlBodySizeLimit, max_bytes=settings.max_body_bytes, error_page=error_page, message=too_large_message
    )
    for middleware in reversed(around_body_cap):
        app.add_middleware(middleware.cls, *middleware.args, **middleware.kwargs)
    app.add_middleware(CrashPage, error_page=error_page)
    app.add_middleware(SecurityHeaders, content_security_policy=content_security_policy)
    app.add_middleware(RequestContextMiddleware)
    instrument_app(app)
    setup_tracing(app, settings.service_name)
    return app
