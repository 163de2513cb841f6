"""Low-stock alerts end to end (issue 14, seed 002), from the real producers: the admin sets a threshold in
inventory, shoppers order and cancel through the orders service (batched and single), a worker consumes
what they wrote. The alert opens exactly once per crossing, mails the owner once, and closes when stock is
back above; over any sequence of orders, cancels, restocks and threshold changes, an alert is open exactly
when stock is at or below the threshold."""

import asyncio
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devstack.testing import LiveServer
from orders.app import create_app as create_orders_app
from orders.settings import OrdersSettings

ALERT_CONSUMERS = ["alerts", "email", "webhooks"]


@pytest.fixture(scope="module", params=["batched", "single"])
def placement_orders_url(
    request: pytest.FixtureRequest,
    service_database_urls: dict[str, str],
    payments_url: str,
    credential_settings: Callable[[str], dict[str, Any]],
) -> Iterator[tuple[str, str]]:
    """(ORDERS_PLACEMENT, an orders server placing that way)."""
    settings = OrdersSettings(
        database_url=service_database_urls["orders"],
        db_pool_size=20,
        payments_url=payments_url,
        placement=request.param,
        **credential_settings("orders"),
    )
    with LiveServer(create_orders_app(settings)) as server:
        yield request.param, server.url


@pytest.fixture
async def inventory(inventory_url, as_gateway):
    async with httpx.AsyncClient(base_url=inventory_url, headers=as_gateway, timeout=30) as client:
        yield client


async def product_event_ids(db, product_id: int) -> list[str]:
    rows = await db.fetch(
        "SELECT event_id::text FROM outbox.events WHERE aggregate = 'product' AND aggregate_id = $1"
        " ORDER BY id",
        product_id,
    )
    return [row["event_id"] for row in rows]


async def product_event_types(db, product_id: int) -> list[str]:
    rows = await db.fetch(
        "SELECT type FROM outbox.events WHERE aggregate = 'product' AND aggregate_id = $1 ORDER BY id",
        product_id,
    )
    return [row["type"] for row in rows]


async def alerts_of(api, product_id: int) -> list[dict]:
    return [
        a for a in (await api.get("/alerts", params={"limit": 200})).json() if a["product_id"] == product_id
    ]


async def test_a_low_stock_alert_opens_exactly_once_when_50_concurrent_orders_cross_the_threshold(
    placement_orders_url, as_gateway, inventory, make_product, mail_sink, workers, api, db, wait, settled
):
    placement, orders_url = placement_orders_url
    owner = f"owner-{uuid.uuid4().hex[:8]}@example.com"
    product = await make_product(stock=60, name=f"Hot lamp ({placement})")
    set_threshold = await inventory.patch(f"/products/{product}", json={"low_stock_threshold": 20})
    assert set_threshold.status_code == 200, set_threshold.text

    with (
        workers.start(mail_sink.url, admin_email=owner),
        workers.start(mail_sink.url, admin_email=owner),
    ):
        async with httpx.AsyncClient(base_url=orders_url, headers=as_gateway, timeout=60) as shop:
            responses = await asyncio.gather(
                *(shop.post("/orders", json={"items": [{"productId": product, "qty": 1}]}) for _ in range(50))
            )
            assert [r.status_code for r in responses] == [201] * 50
            order_ids = [r.json()["orderId"] for r in responses]
            assert await product_event_types(db, product) == ["product.changed", "stock.low"]
            await wait(lambda: _settled(db, settled, product), within_s=60)

            [alert] = await alerts_of(api, product)
            assert alert["open"] is True
            assert alert["threshold"] == 20
            assert 10 <= alert["stock_at_open"] <= 20
            assert [m.kind for m in mail_sink.to({owner})] == ["low_stock"]

            # Stock is 10: eleven concurrent cancels bring it to 21, and exactly one of them crosses.
            cancels = await asyncio.gather(*(shop.post(f"/orders/{o}/cancel") for o in order_ids[:11]))
            assert [r.status_code for r in cancels] == [200] * 11
        assert await product_event_types(db, product) == ["product.changed", "stock.low", "stock.restored"]
        await wait(lambda: _settled(db, settled, product), within_s=60)

    [alert] = await alerts_of(api, product)
    assert (alert["open"], alert["stock_at_close"]) == (False, 21)
    assert [m.kind for m in mail_sink.to({owner})] == ["low_stock"]  # closing mails nobody
    if placement == "batched":
        # Positive control: the 50 orders really went in batches (several orders in one transaction), so
        # the batch function's crossing was the one under test.
        batches = await db.fetchval(
            "SELECT count(DISTINCT xmin::text) FROM orders.orders WHERE id = ANY($1)", order_ids
        )
        assert batches < 50


async def _settled(db, settled, product_id: int) -> bool:
    return await settled(db, await product_event_ids(db, product_id), ALERT_CONSUMERS)


# --- the property ------------------------------------------------------------------------------------------

# Small numbers, so the stock keeps crossing the threshold both ways; now and then no threshold at all.
THRESHOLD = st.integers(-1, 6).map(lambda t: None if t < 0 else t)
OP = st.one_of(
    st.tuples(st.just("order"), st.integers(1, 3)),
    st.tuples(st.just("cancel"), st.integers(0, 50)),  # the n-th order placed so far (mod how many)
    st.tuples(st.just("restock"), st.integers(1, 4)),
    st.tuples(st.just("threshold"), THRESHOLD),
)
# Groups of operations; each group's operations run concurrently.
STEPS = st.lists(st.lists(OP, min_size=1, max_size=4), min_size=1, max_size=8)


@pytest.fixture
def alerts_worker(mail_sink, workers):
    """One worker for all of the property's examples (fixtures are set up once per test, not per example)."""
    with workers.start(mail_sink.url, admin_email="owner@example.com") as server:
        yield server


@given(stock=st.integers(0, 8), threshold=THRESHOLD, steps=STEPS)
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
async def test_an_alert_is_open_exactly_when_stock_is_at_or_below_the_threshold(
    stock, threshold, steps, alerts_worker, orders_url, as_gateway, inventory, api, db, wait, settled
):
    created = await inventory.post(
        "/products",
        json={
            "name": "Property jar",
            "price_cents": 100,
            "stock_qty": stock,
            "low_stock_threshold": threshold,
        },
    )
    assert created.status_code == 201, created.text
    product = created.json()["id"]
    placed: list[int] = []

    async with httpx.AsyncClient(base_url=orders_url, headers=as_gateway, timeout=60) as shop:

        async def run(op: tuple[str, Any]) -> None:
            kind, value = op
            if kind == "order":
                response = await shop.post("/orders", json={"items": [{"productId": product, "qty": value}]})
                assert response.status_code in (201, 409), response.text
                if response.status_code == 201:
                    placed.append(response.json()["orderId"])
            elif kind == "cancel" and known:
                response = await shop.post(f"/orders/{known[value % len(known)]}/cancel")
                assert response.status_code == 200, response.text
            elif kind == "restock":
                response = await inventory.patch(f"/products/{product}/stock", json={"delta": value})
                assert response.status_code == 200, response.text
            elif kind == "threshold":
                response = await inventory.patch(f"/products/{product}", json={"low_stock_threshold": value})
                assert response.status_code == 200, response.text

        for group in steps:
            known = list(placed)  # the orders placed before this group (a cancel may hit one twice)
            await asyncio.gather(*(run(op) for op in group))

    await wait(lambda: _settled(db, settled, product), within_s=60)
    row = await db.fetchrow(
        "SELECT stock_qty, low_stock_threshold FROM inventory.products WHERE id = $1", product
    )
    low = row["low_stock_threshold"] is not None and row["stock_qty"] <= row["low_stock_threshold"]
    alerts = await alerts_of(api, product)
    assert [a["open"] for a in alerts if a["open"]] == ([True] if low else [])
    # The producers wrote the crossings alternately, starting with a stock.low, and each opened one alert.
    transitions = [t for t in await product_event_types(db, product) if t != "product.changed"]
    assert transitions == ["stock.low", "stock.restored"] * (len(transitions) // 2) + ["stock.low"] * low
    assert len(alerts) == transitions.count("stock.low")
