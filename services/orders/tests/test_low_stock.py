"""Orders' stock moves and the low-stock threshold (issue 14): the statement that takes a product across its
threshold writes stock.low, the one that gives stock back across it writes stock.restored, each in the same
statement, once per crossing however many orders queue on the row; and orders' moves never write
product.changed (inventory's event for its own edits). Every live test runs batched and single."""

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from notifications.events import CATALOGUE
from orders.batcher import OrderBatcher
from orders.repository import Placement


@pytest.fixture(scope="module")
def orders_url(orders_url_each_placement: str) -> str:
    return orders_url_each_placement


@pytest.fixture
async def batcher(orders_engine: AsyncEngine) -> AsyncIterator[OrderBatcher]:
    batcher = OrderBatcher(orders_engine, reservation_s=900.0, max_batch=64)
    try:
        yield batcher
    finally:
        await batcher.close()


@pytest.fixture
def product_with_threshold(db, make_product):
    """A product of the test's own, already above its threshold (so it starts not low, as its events say)."""

    async def make(stock: int, threshold: int | None, name: str = "Low-stock lamp") -> int:
        assert threshold is None or stock > threshold
        product = await make_product(stock=stock, name=name)
        await db.execute(
            "UPDATE inventory.products SET low_stock_threshold = $2 WHERE id = $1", product, threshold
        )
        return product

    return make


async def product_events(db, product_id: int) -> list[tuple[str, dict]]:
    rows = await db.fetch(
        "SELECT type, data::text AS data FROM outbox.events"
        " WHERE aggregate = 'product' AND aggregate_id = $1 ORDER BY id",
        product_id,
    )
    for row in rows:
        CATALOGUE[row["type"]].model_validate_json(row["data"])  # what the worker will accept
    return [(row["type"], json.loads(row["data"])) for row in rows]


async def test_fifty_concurrent_orders_crossing_the_threshold_write_one_stock_low(
    orders, db, product_with_threshold
):
    product = await product_with_threshold(stock=60, threshold=20, name="Hot lamp")

    responses = await asyncio.gather(
        *(
            orders.client.post("/orders", json={"items": [{"productId": product, "qty": 1}]})
            for _ in range(50)
        )
    )

    assert [r.status_code for r in responses] == [201] * 50
    assert await db.fetchval("SELECT stock_qty FROM inventory.products WHERE id = $1", product) == 10
    events = await product_events(db, product)
    assert [t for t, _ in events] == ["stock.low"]
    # The order that crossed saw 21 before it and left at most 20 (a batch may take several units at once).
    [(_, data)] = events
    assert (data["product_id"], data["name"], data["threshold"]) == (product, "Hot lamp", 20)
    assert 10 <= data["stock_qty"] <= 20


async def test_orders_that_stay_above_or_start_below_write_nothing(orders, db, product_with_threshold):
    above = await product_with_threshold(stock=10, threshold=3)
    none = await product_with_threshold(stock=10, threshold=None)
    for _ in range(3):
        await orders.place(above, 2)  # 8, 6, 4: never at 3
        await orders.place(none, 3)
    assert await product_events(db, above) == []
    assert await product_events(db, none) == []

    await orders.place(above, 1)  # 3: crossed, at the threshold itself
    await orders.place(above, 1)  # 2: already low (it started at the threshold, not above it)
    await orders.place(above, 2)  # 0
    assert [(t, d["stock_qty"]) for t, d in await product_events(db, above)] == [("stock.low", 3)]


async def test_a_cancel_that_restocks_above_the_threshold_writes_stock_restored_once(
    orders, db, product_with_threshold
):
    product = await product_with_threshold(stock=6, threshold=2)
    big = (await orders.place(product, 3))["orderId"]  # 3
    small = (await orders.place(product, 1))["orderId"]  # 2: low
    assert (await orders.cancel(small)).status_code == 200  # 3: restored
    again = await asyncio.gather(*(orders.cancel(small) for _ in range(5)))  # nothing moves twice
    assert {r.status_code for r in again} == {200}
    second = (await orders.place(product, 1))["orderId"]  # 2: low again
    assert (await orders.cancel(big)).status_code == 200  # 5: restored
    assert (await orders.cancel(second)).status_code == 200  # 6: still above, nothing

    assert [(t, d["stock_qty"], d["threshold"]) for t, d in await product_events(db, product)] == [
        ("stock.low", 2, 2),
        ("stock.restored", 3, 2),
        ("stock.low", 2, 2),
        ("stock.restored", 5, 2),
    ]


async def test_an_expiry_that_restocks_above_the_threshold_writes_stock_restored(
    orders, db, product_with_threshold, reconciler
):
    product = await product_with_threshold(stock=5, threshold=1)
    first = (await orders.place(product, 2))["orderId"]
    second = (await orders.place(product, 2))["orderId"]  # 1: low
    await db.execute(
        "UPDATE orders.orders SET expires_at = now() - interval '1 second' WHERE id = ANY($1)",
        [first, second],
    )
    # One statement restocks both (5). The sweep takes every expired order in the database: other tests' too.
    assert {first, second} <= set(await reconciler.sweep())

    assert [(t, d["stock_qty"]) for t, d in await product_events(db, product)] == [
        ("stock.low", 1),
        ("stock.restored", 5),
    ]


async def test_a_batch_writes_one_stock_low_for_the_product_it_takes_across(
    batcher, db, product_with_threshold
):
    lamp = await product_with_threshold(stock=10, threshold=5)
    pen = await product_with_threshold(stock=10, threshold=2)
    cup = await product_with_threshold(stock=10, threshold=None)

    results = await batcher.place_batch(
        [
            Placement([(lamp, 3), (pen, 1), (cup, 9)], None, None),  # lamp 7
            Placement([(lamp, 3)], None, None),  # lamp 4: across
            Placement([(lamp, 9)], None, None),  # refused: takes nothing
            Placement([(lamp, 1), (pen, 1)], None, None),  # lamp 3, pen 8
        ]
    )

    assert [r.order_id is not None for r in results] == [True, True, False, True]
    assert [(t, d["stock_qty"], d["threshold"]) for t, d in await product_events(db, lamp)] == [
        ("stock.low", 3, 5)  # the stock the batch left, decided once for the whole batch
    ]
    assert await product_events(db, pen) == []
    assert await product_events(db, cup) == []

    # A batch that starts at the threshold (or below) writes nothing: the crossing was the earlier one's.
    mug = await product_with_threshold(stock=10, threshold=4)
    await batcher.place_batch([Placement([(mug, 3)], None, None), Placement([(mug, 3)], None, None)])  # 4
    await batcher.place_batch([Placement([(mug, 1)], None, None), Placement([(mug, 1)], None, None)])  # 2
    assert [(t, d["stock_qty"]) for t, d in await product_events(db, mug)] == [("stock.low", 4)]
    # and in the batch's own transaction: one commit for the orders and the event
    xmins = await db.fetch(
        "SELECT DISTINCT xmin::text FROM outbox.events WHERE aggregate = 'product' AND aggregate_id = $1"
        " UNION SELECT DISTINCT o.xmin::text FROM orders.orders AS o WHERE o.id = ANY($2)",
        lamp,
        [r.order_id for r in results if r.order_id is not None],
    )
    assert len(xmins) == 1


async def test_orders_stock_moves_write_no_product_changed(
    orders, db, make_product, inventory_url, as_gateway
):
    import httpx

    product = await make_product(stock=10)
    order_id = (await orders.place(product, 2))["orderId"]
    await orders.place(product, 1)
    assert (await orders.cancel(order_id)).status_code == 200
    assert await product_events(db, product) == []

    # Positive control: the same query sees inventory's own edit of the product.
    async with httpx.AsyncClient(base_url=inventory_url, headers=as_gateway, timeout=30) as client:
        assert (await client.patch(f"/products/{product}/stock", json={"delta": 1})).status_code == 200
    assert [t for t, _ in await product_events(db, product)] == ["product.changed"]
