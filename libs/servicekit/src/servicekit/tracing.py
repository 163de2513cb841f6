"""OpenTelemetry tracing: FastAPI (server spans), httpx (client spans, traceparent sent upstream) and
SQLAlchemy (one span per statement, also under asyncpg).

Off unless asked: without ``OTEL_EXPORTER_OTLP_ENDPOINT`` (and without an explicit exporter, which tests
pass) ``setup_tracing`` does nothing at all: no provider, no instrumentation, no per-request cost. With it,
spans go over OTLP/HTTP (``<endpoint>/v1/traces``) in batches; the exporter reads the other standard
``OTEL_EXPORTER_OTLP_*`` variables itself.

Usage, for any FastAPI app (``create_service_app`` does this for the services)::

    provider = setup_tracing(app, "gateway")           # at app creation, before it starts
    ...
    instrument_engine(engine, provider)                 # once the engine exists (in the lifespan)

The SQLAlchemy instrumentation declares support for ``sqlalchemy < 2.1`` and ``SQLAlchemyInstrumentor()
.instrument()`` silently skips itself on anything newer (we run 2.1). Its hooks (engine events) work on 2.1,
so each engine gets the instrumentation's ``EngineTracer`` directly; ``test_tracing`` proves a database span
really appears.
"""

import os

from fastapi import FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.instrumentation.sqlalchemy.version import __version__ as sqlalchemy_instrumentation_version
from opentelemetry.metrics import get_meter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from sqlalchemy.ext.asyncio import AsyncEngine

OTLP_ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"
# Probes and scrapes would otherwise be most of the traces.
EXCLUDED_URLS = "healthz,readyz,metrics"
SQLALCHEMY_INSTRUMENTATION = "opentelemetry.instrumentation.sqlalchemy"


def tracing_enabled() -> bool:
    return bool(os.environ.get(OTLP_ENDPOINT_ENV))


def setup_tracing(
    app: FastAPI,
    service_name: str,
    engine: AsyncEngine | None = None,
    *,
    exporter: SpanExporter | None = None,
) -> TracerProvider | None:
    """Trace ``app`` (and ``engine``, if given) when an OTLP endpoint is configured or ``exporter`` is given.

    Returns the provider (also at ``app.state.tracer_provider``), or None when tracing is off.
    ``exporter`` is exported synchronously (for tests: ``InMemorySpanExporter``); OTLP goes in batches.
    """
    app.state.tracer_provider = None
    if exporter is None and not tracing_enabled():
        return None
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    # The provider is handed to each instrumentation and never made global: FastAPI (0.165+) has native
    # telemetry of its own that traces with the *global* provider, which would give every request a second
    # set of server spans. Left unset, the global provider stays a no-op and FastAPI's spans never record.
    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider, excluded_urls=EXCLUDED_URLS)
    # httpx is patched process-wide; the first app to ask binds it to its provider.
    httpx_instrumentor = HTTPXClientInstrumentor()
    if not httpx_instrumentor.is_instrumented_by_opentelemetry:
        httpx_instrumentor.instrument(tracer_provider=provider)
    if engine is not None:
        instrument_engine(engine, provider)
    app.state.tracer_provider = provider
    return provider


def instrument_engine(engine: AsyncEngine, provider: TracerProvider | None) -> None:
    """A span per SQL statement on ``engine`` (no-op when ``provider`` is None, i.e. tracing is off).

    The async engine's events fire on its ``sync_engine``; that is the one to instrument.
    """
    if provider is None:
        return
    # EngineTracer is what SQLAlchemyInstrumentor().instrument(engine=...) builds, minus the instrumentor's
    # process-wide singleton (a second engine, or a second app in one test process, would be skipped) and
    # minus its version gate (it refuses SQLAlchemy 2.1, whose engine events it handles fine).
    EngineTracer(  # type: ignore[no-untyped-call]
        provider.get_tracer(SQLALCHEMY_INSTRUMENTATION, sqlalchemy_instrumentation_version),
        engine.sync_engine,
        get_meter(SQLALCHEMY_INSTRUMENTATION).create_up_down_counter(
            name="db.client.connections.usage", unit="connections"
        ),
    )


def shutdown_tracing(provider: TracerProvider | None) -> None:
    """Flush the spans still batched (at app shutdown)."""
    if provider is not None:
        provider.shutdown()
