"""/metrics after real traffic: the HTTP series per route template and status, and orders' business series."""

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route, Router

from devstack.testing import LiveServer, wait_for
from servicekit.metrics import UNMATCHED_ROUTE, instrument_app

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(client: httpx.AsyncClient) -> Samples:
    """The app's samples once every earlier request is fully counted: a client has its response a moment
    before the server's middleware finishes with the request, so wait until the scrape is alone in flight."""
    in_flight = 0.0

    async def alone_in_flight() -> Samples | None:
        nonlocal in_flight
        response = await client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        samples = {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
        }
        in_flight = sum(v for (name, _), v in samples.items() if name == "lockstock_http_requests_in_flight")
        return samples if in_flight == 1 else None

    return await wait_for(alone_in_flight, what=lambda: f"the scrape alone in flight; {in_flight} were")


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


async def test_http_metrics_count_each_request_under_its_route_template_and_status(
    inventory_url, as_gateway, make_product
):
    product_ids = [await make_product() for _ in range(3)]
    async with httpx.AsyncClient(base_url=inventory_url, headers=as_gateway, timeout=30) as client:
        before = await scrape(client)
        responses = await asyncio.gather(*(client.get(f"/products/{pid}") for pid in product_ids))
        missing = await client.get("/products/987654321")
        nowhere = await client.get("/no/such/path/12345")
        after = await scrape(client)

    assert [r.status_code for r in responses] == [200, 200, 200]
    assert (missing.status_code, nowhere.status_code) == (404, 404)
    route = "/products/{product_id}"
    assert delta(before, after, "lockstock_http_requests_total", method="GET", route=route, status="200") == 3
    assert delta(before, after, "lockstock_http_requests_total", method="GET", route=route, status="404") == 1
    assert (
        delta(
            before, after, "lockstock_http_requests_total", method="GET", route=UNMATCHED_ROUTE, status="404"
        )
        == 1
    )
    duration = "lockstock_http_request_duration_seconds"
    assert delta(before, after, f"{duration}_count", method="GET", route=route, status="200") == 3
    assert delta(before, after, f"{duration}_sum", method="GET", route=route, status="200") > 0
    assert delta(before, after, f"{duration}_bucket", method="GET", route=route, status="200", le="+Inf") == 3
    # The earlier scrape counted under its own route (a plain Starlette route inside a FastAPI app).
    assert (
        delta(before, after, "lockstock_http_requests_total", method="GET", route="/metrics", status="200")
        >= 1
    )
    # The scrape that reports it is the one request in flight.
    assert value(after, "lockstock_http_requests_in_flight", method="GET") == 1
    # Raw paths never become labels: one series per template, however many ids are requested.
    routes = {dict(labels).get("route") for (_name, labels) in after}
    assert not any(r and any(str(pid) in r for pid in product_ids) for r in routes)
    assert "/no/such/path/12345" not in routes


async def test_order_metrics_count_placed_orders_units_and_refusals_by_reason(
    orders_url, as_gateway, make_product
):
    mug = await make_product(stock=5, price_cents=1_000)
    async with httpx.AsyncClient(base_url=orders_url, headers=as_gateway, timeout=30) as client:
        before = await scrape(client)
        placed = [
            await client.post("/orders", json={"items": [{"productId": mug, "qty": 2}]}),
            await client.post("/orders", json={"items": [{"productId": mug, "qty": 3}]}),
        ]
        short = await client.post("/orders", json={"items": [{"productId": mug, "qty": 1}]})
        unknown = await client.post("/orders", json={"items": [{"productId": 987654321, "qty": 1}]})
        too_many = await client.post(
            "/orders", json={"items": [{"productId": mug, "qty": 600}, {"productId": mug, "qty": 600}]}
        )
        after = await scrape(client)

    assert [r.status_code for r in placed] == [201, 201]
    assert (short.status_code, unknown.status_code, too_many.status_code) == (409, 422, 422)
    assert delta(before, after, "lockstock_orders_placed_total") == 2
    assert delta(before, after, "lockstock_order_units_sold_total") == 5
    refused = "lockstock_orders_refused_total"
    assert delta(before, after, refused, reason="insufficient_stock") == 1
    assert delta(before, after, refused, reason="unknown_product") == 1
    assert delta(before, after, refused, reason="invalid_quantity") == 1
    # Every order statement that ran (two placed, two refused by its verdict) reported its lock wait.
    assert delta(before, after, "lockstock_order_lock_wait_seconds_count") == 4
    assert (
        delta(before, after, "lockstock_http_requests_total", method="POST", route="/orders", status="201")
        == 2
    )


async def test_lock_wait_is_the_time_an_order_queued_behind_a_row_lock(
    orders_url, as_gateway, make_product, db
):
    mug = await make_product(stock=5)
    held_for = 0.3
    async with httpx.AsyncClient(base_url=orders_url, headers=as_gateway, timeout=30) as client:
        before = await scrape(client)
        async with db.transaction():
            await db.execute("SELECT 1 FROM inventory.products WHERE id = $1 FOR UPDATE", mug)
            order = asyncio.create_task(
                client.post("/orders", json={"items": [{"productId": mug, "qty": 1}]})
            )
            waiting = (
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE application_name = 'orders' AND wait_event_type = 'Lock'"
            )
            await wait_for(lambda: db.fetchval(waiting), what="the order to queue behind the lock")
            await asyncio.sleep(held_for)  # hold the lock for a known time while the order waits
        response = await order
        after = await scrape(client)

    assert response.status_code == 201
    assert delta(before, after, "lockstock_order_lock_wait_seconds_count") == 1
    waited = delta(before, after, "lockstock_order_lock_wait_seconds_sum")
    assert held_for <= waited < held_for + 5
    assert delta(before, after, "lockstock_order_lock_wait_seconds_bucket", le="0.1") == 0


async def test_idempotent_replays_are_counted_per_table(orders_url, as_gateway, make_product):
    mug = await make_product(stock=5)
    body = {"items": [{"productId": mug, "qty": 1}]}
    headers = {"Idempotency-Key": f"metrics-replay-{mug}"}
    async with httpx.AsyncClient(base_url=orders_url, headers=as_gateway, timeout=30) as client:
        before = await scrape(client)
        first = await client.post("/orders", json=body, headers=headers)
        again = await client.post("/orders", json=body, headers=headers)
        after = await scrape(client)

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert delta(before, after, "lockstock_idempotent_replays_total", table="orders.idempotency_keys") == 1
    assert delta(before, after, "lockstock_orders_placed_total") == 1


@pytest.fixture
def mounted_app() -> Iterator[str]:
    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"hello {request.path_params['name']}")

    async def boom(_request: Request) -> PlainTextResponse:
        raise RuntimeError("unexpected")

    app = Starlette(
        routes=[
            Route("/boom", boom),
            Mount("/api", app=Router(routes=[Route("/hello/{name}", hello)])),
            Mount("/static", app=PlainTextResponse("a file")),
        ]
    )
    instrument_app(app)
    with LiveServer(app) as server:
        yield server.url


async def test_any_starlette_app_gets_the_metrics_with_one_call(mounted_app):
    async with httpx.AsyncClient(base_url=mounted_app, timeout=30) as client:
        assert (await client.get("/api/hello/ada")).text == "hello ada"
        assert (await client.get("/static/css/site.css")).status_code == 200
        assert (await client.get("/boom")).status_code == 500
    # The server closes a connection whose app raised; scrape on a new one.
    async with httpx.AsyncClient(base_url=mounted_app, timeout=30) as client:
        after = await scrape(client)

    total = "lockstock_http_requests_total"
    assert value(after, total, method="GET", route="/api/hello/{name}", status="200") == 1
    assert value(after, total, method="GET", route="/static/{path}", status="200") == 1
    assert value(after, total, method="GET", route="/boom", status="500") == 1
    assert value(after, "lockstock_http_requests_in_flight", method="GET") == 1


async def test_authorizations_and_captures_are_counted_by_outcome(orders_url, as_gateway, make_product):
    mug = await make_product(stock=5, price_cents=1_000)
    async with httpx.AsyncClient(base_url=orders_url, headers=as_gateway, timeout=30) as client:
        before = await scrape(client)
        statuses = []
        for card in (
            "4000 0000 0000 0002",
            "4242 4242 4242 4242",
        ):  # the simulator's declining test card, then a good one
            placed = await client.post("/orders", json={"items": [{"productId": mug, "qty": 1}]})
            order_id = placed.json()["orderId"]
            authorized = await client.post(f"/orders/{order_id}/authorize", json={"card_number": card})
            statuses.append(authorized.json()["status"])
        captured = await client.post(f"/orders/{order_id}/capture")
        statuses.append(captured.json()["status"])
        after = await scrape(client)

    assert statuses == ["PAYMENT_FAILED", "AUTHORIZED", "PAID"]
    assert delta(before, after, "lockstock_order_authorizations_total", outcome="card_declined") == 1
    assert delta(before, after, "lockstock_order_authorizations_total", outcome="authorized") == 1
    assert delta(before, after, "lockstock_order_captures_total", outcome="paid") == 1


async def test_stock_changes_are_counted_by_kind_and_refusals_apart(inventory_url, as_gateway, make_product):
    product_id = await make_product(stock=2)
    async with httpx.AsyncClient(base_url=inventory_url, headers=as_gateway, timeout=30) as client:
        before = await scrape(client)
        statuses = [
            (await client.patch(f"/products/{product_id}/stock", json=body)).status_code
            for body in ({"stock_qty": 5}, {"delta": -1}, {"delta": -10})
        ]
        after = await scrape(client)

    assert statuses == [200, 200, 409]
    assert delta(before, after, "lockstock_inventory_stock_changes_total", kind="set") == 1
    assert delta(before, after, "lockstock_inventory_stock_changes_total", kind="delta") == 1
    assert delta(before, after, "lockstock_inventory_stock_changes_refused_total") == 1
