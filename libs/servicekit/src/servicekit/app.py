"""create_service_app: the frame every lockstock REST service shares."""

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import APIRouter, FastAPI
from opentelemetry.sdk.trace.export import SpanExporter
from sqlalchemy.ext.asyncio import async_sessionmaker

from servicekit.callers import CallerAuthMiddleware, CallerPolicy
from servicekit.db import create_engine
from servicekit.errors import install_error_handlers
from servicekit.health import router as health_router
from servicekit.logging import configure_logging
from servicekit.metrics import instrument_app
from servicekit.middleware import RequestContextMiddleware
from servicekit.settings import DatabaseSettings
from servicekit.tracing import instrument_engine, setup_tracing, shutdown_tracing

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def create_service_app(
    settings: DatabaseSettings,
    *,
    title: str,
    routers: Sequence[APIRouter],
    callers: CallerPolicy,
    lifespan: Lifespan | None = None,
    description: str = "",
    span_exporter: SpanExporter | None = None,
) -> FastAPI:
    """A FastAPI app with the kit's engine, session, errors, logs, request ids, health routes, Prometheus
    metrics at /metrics, and OpenTelemetry tracing when OTEL_EXPORTER_OTLP_ENDPOINT is set (or
    ``span_exporter`` is given, as tests do).

    ``callers`` says which apps may call it (servicekit.callers); every route but health and metrics
    refuses a request without one of their credentials (``settings.caller_tokens``).

    ``lifespan`` runs inside the kit's own, after the engine exists (``app.state.engine``).
    """
    configure_logging(settings.service_name, settings.log_level, json=settings.log_json)

    @asynccontextmanager
    async def kit_lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        app.state.settings = settings
        app.state.engine = engine
        instrument_engine(engine, app.state.tracer_provider)
        app.state.sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
        try:
            if lifespan is None:
                yield
            else:
                async with lifespan(app):
                    yield
        finally:
            await engine.dispose()
            shutdown_tracing(app.state.tracer_provider)

    app = FastAPI(title=title, description=description, version="0.1.0", lifespan=kit_lifespan)
    install_error_handlers(app)
    app.include_router(health_router)
    for router in routers:
        app.include_router(router)
    app.add_middleware(CallerAuthMiddleware, policy=callers, accepted=settings.caller_tokens)
    app.add_middleware(RequestContextMiddleware)  # outside the caller check: refusals carry a request id
    instrument_app(app)  # outermost of the kit's middleware: it sees the masked 500s too
    setup_tracing(app, settings.service_name, exporter=span_exporter)
    return app
