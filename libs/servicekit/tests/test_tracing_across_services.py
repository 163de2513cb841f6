"""One checkout through the gateway is one trace: gateway → orders → PostgreSQL (and inventory), and every
log line of it, in every app, carries the same request id and trace id.

The gateway does not use create_service_app; this test wires it the way any such app is wired
(``instrument_app`` + ``setup_tracing``), all apps exporting to one in-memory exporter."""

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from devstack.testing import LiveServer, wait_for, wait_until
from servicekit.metrics import instrument_app
from servicekit.tracing import setup_tracing

gateway_app = pytest.importorskip("gateway.app", reason="the gateway has not arrived yet")

PLACE_ORDER = """mutation($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { id status totalCents } errors { code message } }
}"""


@pytest.fixture
def traced_system(
    service_database_urls, payments_url, gateway_settings, credential_settings
) -> Iterator[tuple[str, InMemorySpanExporter]]:
    """inventory, orders and the gateway, traced into one exporter (payments is the suite's shared one)."""
    from inventory.app import create_app as create_inventory_app
    from inventory.settings import InventorySettings
    from orders.app import create_app as create_orders_app
    from orders.settings import OrdersSettings

    exporter = InMemorySpanExporter()
    inventory = create_inventory_app(
        InventorySettings(database_url=service_database_urls["inventory"], **credential_settings("inventory"))
    )
    setup_tracing(inventory, "inventory", exporter=exporter)
    orders = create_orders_app(
        OrdersSettings(
            database_url=service_database_urls["orders"],
            payments_url=payments_url,
            **credential_settings("orders"),
        )
    )
    setup_tracing(orders, "orders", exporter=exporter)
    with LiveServer(inventory) as inventory_server, LiveServer(orders) as orders_server:
        settings = gateway_settings.model_copy(
            update={"inventory_url": inventory_server.url, "orders_url": orders_server.url}
        )
        gateway = gateway_app.create_app(settings)
        instrument_app(gateway)
        setup_tracing(gateway, "gateway", exporter=exporter)
        with LiveServer(gateway) as gateway_server:
            yield gateway_server.url, exporter


async def trace_of(exporter: InMemorySpanExporter, service: str, *, name_has: str) -> list[Any]:
    """All finished spans of the trace whose ``service`` server span is named with ``name_has``."""

    async def trace() -> list[Any] | None:
        finished = exporter.get_finished_spans()
        roots = [
            s
            for s in finished
            if s.kind is SpanKind.SERVER
            and s.resource.attributes["service.name"] == service
            and name_has in s.name
        ]
        if roots:
            return [s for s in finished if s.context.trace_id == roots[0].context.trace_id]
        return None

    return await wait_for(trace, what=f"a {service} server span named like {name_has!r}")


async def test_one_checkout_is_one_trace_from_the_gateway_through_orders_to_postgresql(
    traced_system, make_product, server_logs
):
    gateway_url, exporter = traced_system
    mug = await make_product(stock=5, price_cents=1_000)
    request_id = f"checkout-{uuid.uuid4().hex}"

    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(
            f"{gateway_url}/graphql",
            json={
                "query": PLACE_ORDER,
                "variables": {"input": {"items": [{"productId": str(mug), "qty": 2}]}},
            },
            headers={"X-Request-ID": request_id},
        )

        # The gateway, wired with instrument_app like any app outside create_service_app, counts it too
        # (a moment after the client has its response: the middleware counts once the response is out).
        counted = 'lockstock_http_requests_total{method="POST",route="/graphql",status="200"} 1.0'

        async def gateway_counted() -> bool:
            return counted in (await client.get(f"{gateway_url}/metrics")).text

        await wait_until(gateway_counted, what="the gateway to count the request")

    assert response.status_code == 200, response.text
    payload = response.json()["data"]["placeOrder"]
    assert payload["errors"] == []
    assert payload["order"]["status"] == "PENDING"

    # The orders server span ends after its response reached the gateway: wait for it too.
    spans: list[Any] = []

    async def with_orders_span() -> list[Any] | None:
        nonlocal spans
        spans = await trace_of(exporter, "gateway", name_has="/graphql")
        return spans if any(s.kind is SpanKind.SERVER and s.name == "POST /orders" for s in spans) else None

    spans = await wait_for(
        with_orders_span, what=lambda: f"the orders span in the trace: {[s.name for s in spans]}"
    )
    trace_ids = {s.context.trace_id for s in spans}
    assert len(trace_ids) == 1
    by_service: dict[str, list[Any]] = {}
    for span in spans:
        by_service.setdefault(span.resource.attributes["service.name"], []).append(span)
    orders_server = [
        s for s in by_service["orders"] if s.kind is SpanKind.SERVER and s.name == "POST /orders"
    ]
    assert len(orders_server) == 1
    order_statement = [
        s
        for s in by_service["orders"]
        if s.kind is SpanKind.CLIENT
        and s.attributes.get("db.system") == "postgresql"
        # PLACE_ORDER itself, or the batch function that runs it for several orders (ORDERS_PLACEMENT)
        and any(
            marker in str(s.attributes.get("db.statement", ""))
            for marker in ("FOR UPDATE", "orders.place_orders(")
        )
    ]
    assert order_statement, "the order statement has no database span in the trace"
    # The orders server span's parent is a span of the gateway's trace (its httpx call): the context crossed.
    assert orders_server[0].parent is not None
    assert orders_server[0].parent.trace_id in trace_ids

    # Every log line of the checkout, in the gateway and in orders, has its request id and its trace id.
    trace_id = format(next(iter(trace_ids)), "032x")
    lines = [line for line in server_logs.events() if line.get("request_id") == request_id]
    events = {line["event"] for line in lines}
    assert "order_placed" in events
    assert sum(line["event"] == "request_finished" for line in lines) >= 2  # gateway and orders at least
    assert all(line.get("trace_id") == trace_id for line in lines), [
        line for line in lines if line.get("trace_id") != trace_id
    ]
