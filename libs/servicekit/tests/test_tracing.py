"""Tracing: a request is one trace with a server span and a span per SQL statement; logs carry its ids;
with no OTLP endpoint nothing is set up; with one, spans really leave over OTLP/HTTP."""

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from devstack.testing import LiveServer, wait_for, wait_until
from inventory.api import CALLERS as INVENTORY_CALLERS
from inventory.api import router as inventory_router
from inventory.settings import InventorySettings
from servicekit.app import create_service_app
from servicekit.tracing import OTLP_ENDPOINT_ENV

GATEWAY_TOKEN = "tracing-test-gateway-token"
AS_GATEWAY = {"Authorization": f"Bearer {GATEWAY_TOKEN}"}


def inventory_app(database_url: str, exporter: InMemorySpanExporter | None = None) -> FastAPI:
    return create_service_app(
        InventorySettings(database_url=database_url, caller_tokens={"gateway": GATEWAY_TOKEN}),
        title="inventory, traced",
        routers=[inventory_router],
        callers=INVENTORY_CALLERS,
        span_exporter=exporter,
    )


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture(scope="module")
def traced_inventory_url(
    service_database_urls: dict[str, str], exporter: InMemorySpanExporter
) -> Iterator[str]:
    with LiveServer(inventory_app(service_database_urls["inventory"], exporter)) as server:
        yield server.url


def request_path(span: Any) -> str | None:
    attributes = span.attributes or {}
    return attributes.get("url.path") or attributes.get("http.target")


async def spans_of_request(exporter: InMemorySpanExporter, path: str, *, at_least: int) -> list[Any]:
    """The finished spans of the trace whose server span served ``path`` (it ends after the response)."""
    spans: list[Any] = []

    async def arrived() -> list[Any] | None:
        nonlocal spans
        finished = exporter.get_finished_spans()
        server = [s for s in finished if s.kind is SpanKind.SERVER and request_path(s) == path]
        spans = [s for s in finished if server and s.context.trace_id == server[0].context.trace_id]
        return spans if len(spans) >= at_least else None

    return await wait_for(arrived, what=lambda: f"{at_least} spans of the request; {len(spans)} arrived")


async def test_a_request_is_one_trace_with_a_server_span_and_a_database_span(
    traced_inventory_url, exporter, make_product
):
    product_id = await make_product()

    async with httpx.AsyncClient() as client:
        response = await client.get(f"{traced_inventory_url}/products/{product_id}", headers=AS_GATEWAY)

    assert response.status_code == 200
    spans = await spans_of_request(exporter, f"/products/{product_id}", at_least=2)
    server = next(s for s in spans if s.kind is SpanKind.SERVER)
    assert server.name == "GET /products/{product_id}"
    assert server.resource.attributes["service.name"] == "inventory"
    database = [
        s for s in spans if s.kind is SpanKind.CLIENT and s.attributes.get("db.system") == "postgresql"
    ]
    assert database, f"no SQLAlchemy span among {[s.name for s in spans]}"
    # The database span hangs under the server span: follow its parents up.
    by_id = {s.context.span_id: s for s in spans}
    parent = database[0].parent
    ancestors = []
    while parent is not None and parent.span_id in by_id:
        ancestors.append(by_id[parent.span_id])
        parent = by_id[parent.span_id].parent
    assert server in ancestors
    statement = str(database[0].attributes.get("db.statement", ""))
    assert "inventory.products" in statement


async def test_every_log_line_of_a_request_carries_its_request_id_and_trace_id(
    service_database_urls, exporter, make_product, server_logs
):
    product_id = await make_product()
    request_id = f"trace-log-{uuid.uuid4().hex}"
    app = inventory_app(service_database_urls["inventory"], exporter)
    server_logs.attach()  # making the app configured logging again
    with LiveServer(app) as server:
        async with httpx.AsyncClient() as client:
            response = await client.patch(
                f"{server.url}/products/{product_id}/stock",
                json={"delta": -1},
                headers={"X-Request-ID": request_id, **AS_GATEWAY},
            )
    # The request is over once its server span ended.
    spans = await spans_of_request(exporter, f"/products/{product_id}/stock", at_least=2)
    trace_id = format(spans[0].context.trace_id, "032x")

    assert response.status_code == 200
    assert response.headers["x-request-id"] == request_id
    lines = server_logs.events()
    of_request = [line for line in lines if line.get("request_id") == request_id]
    assert any(line["event"] == "request_finished" for line in of_request)
    assert all(line.get("trace_id") == trace_id for line in of_request), of_request
    assert all(len(line.get("span_id", "")) == 16 for line in of_request)
    with_trace = [line for line in lines if line.get("trace_id") == trace_id]
    assert all(line.get("request_id") == request_id for line in with_trace), with_trace


async def test_without_an_otlp_endpoint_tracing_is_not_set_up_at_all(
    service_database_urls, monkeypatch, server_logs
):
    monkeypatch.delenv(OTLP_ENDPOINT_ENV, raising=False)
    app = inventory_app(service_database_urls["inventory"])
    server_logs.attach()  # making the app configured logging again

    assert app.state.tracer_provider is None
    assert not hasattr(app, "_original_build_middleware_stack")  # FastAPI instrumentation never wrapped it
    with LiveServer(app) as server:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"{server.url}/healthz", headers={"X-Request-ID": "untraced"})
        assert response.status_code == 200

        # The request's log line is written after its response is sent: poll for it, never race it.
        async def logged() -> bool:
            return any(event.get("request_id") == "untraced" for event in server_logs.events())

        await wait_until(logged)
    finished = [event for event in server_logs.events() if event.get("request_id") == "untraced"]
    assert finished
    assert all("trace_id" not in line for line in finished)


@pytest.fixture
def otlp_collector() -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    """A stand-in OTLP/HTTP receiver: records what arrives at /v1/traces."""
    received: list[tuple[str, bytes]] = []

    async def traces(request: Request) -> Response:
        received.append((request.headers.get("content-type", ""), await request.body()))
        return Response(b"", media_type="application/x-protobuf")

    with LiveServer(Starlette(routes=[Route("/v1/traces", traces, methods=["POST"])])) as server:
        yield server.url, received


async def test_with_an_otlp_endpoint_spans_are_exported_over_otlp_http(
    service_database_urls, otlp_collector, monkeypatch, make_product
):
    endpoint, received = otlp_collector
    monkeypatch.setenv(OTLP_ENDPOINT_ENV, endpoint)
    product_id = await make_product()
    app = inventory_app(service_database_urls["inventory"])
    assert app.state.tracer_provider is not None

    with LiveServer(app) as server:
        async with httpx.AsyncClient() as client:
            assert (
                await client.get(f"{server.url}/products/{product_id}", headers=AS_GATEWAY)
            ).status_code == 200
    # Shutting the app down flushed the batch.

    assert received, "nothing reached the OTLP endpoint"
    assert {content_type for content_type, _ in received} == {"application/x-protobuf"}
    spans = [
        (span.name, span.kind)
        for _, body in received
        for resource_spans in ExportTraceServiceRequest.FromString(body).resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    ]
    # One server span for the request (FastAPI's own native telemetry stays off: no global provider is set).
    server_kind = Span.SpanKind.SPAN_KIND_SERVER
    assert [name for name, kind in spans if kind == server_kind] == ["GET /products/{product_id}"]
    assert any(kind == Span.SpanKind.SPAN_KIND_CLIENT for _, kind in spans)  # the database span
    assert trace.get_tracer_provider().__class__.__name__ == "ProxyTracerProvider"
