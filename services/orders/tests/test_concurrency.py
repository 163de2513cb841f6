"""The promise: under any concurrency, never sell stock that is not there, never deadlock, all or nothing.

Every request here is real: concurrent HTTP requests to a live orders service, really committed; each test
runs twice, with each order its own statement and transaction (ORDERS_PLACEMENT=single) and with the orders
that arrive together decided in one statement and one commit (batched).
"""

import asyncio
from collections import Counter

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


@pytest.fixture(scope="module")
def orders_url(orders_url_each_placement: str) -> str:
    """Every test here runs with ORDERS_PLACEMENT=batched and =single."""
    return orders_url_each_placement


async def place(client: httpx.AsyncClient, lines: list[tuple[int, int]]) -> httpx.Response:
    return await client.post("/orders", json={"items": [{"productId": p, "qty": q} for p, q in lines]})


async def test_two_orders_race_for_the_last_unit(orders_url, as_gateway, db, make_product):
    mug = await make_product(stock=1)
    async with httpx.AsyncClient(base_url=orders_url, headers=as_gateway, timeout=30) as client:
        first, second = await asyncio.gather(place(client, [(mug, 1)]), place(client, [(mug, 1)]))

    assert sorted([first.status_code, second.status_code]) == [201, 409]
    loser = first if first.status_code == 409 else second
    assert loser.json()["items"] == [{"product_id": mug, "requested": 1, "available": 0}]
    assert await db.fetchval("SELECT stock_qty FROM inventory.products WHERE id = $1", mug) == 0
    assert await db.fetchval("SELECT count(*) FROM orders.order_items WHERE product_id = $1", mug) == 1


async def test_fifty_buyers_for_ten_units_sell_exactly_ten(orders_url, as_gateway, db, make_product):
    product = await make_product(stock=10)
    async with httpx.AsyncClient(base_url=orders_url, headers=as_gateway, timeout=60) as client:
        responses = await asyncio.gather(*(place(client, [(product, 1)]) for _ in range(50)))

    assert Counter(r.status_code for r in responses) == {201: 10, 409: 40}
    assert await db.fetchval("SELECT stock_qty FROM inventory.products WHERE id = $1", product) == 0


async def test_overlapping_orders_in_opposite_product_order_do_not_deadlock(
    orders_url, as_gateway, db, make_product
):
    a = await make_product(stock=1_000)
    b = await make_product(stock=1_000)
    c = await make_product(stock=1_000)
    forward = [(a, 1), (b, 1), (c, 1)]
    backward = [(c, 1), (b, 1), (a, 1)]
    async with httpx.AsyncClient(base_url=orders_url, headers=as_gateway, timeout=60) as client:
        responses = await asyncio.gather(*(place(client, forward if i % 2 else backward) for i in range(60)))

    assert [r.status_code for r in responses] == [201] * 60, {
        r.text for r in responses if r.status_code != 201
    }
    stocks = await db.fetch(
        "SELECT stock_qty FROM inventory.products WHERE id = ANY($1) ORDER BY id", [a, b, c]
    )
    assert [s["stock_qty"] for s in stocks] == [940, 940, 940]


async def test_concurrent_cancels_give_stock_back_once(orders_url, as_gateway, db, make_product):
    product = await make_product(stock=5)
    async with httpx.AsyncClient(base_url=orders_url, headers=as_gateway, timeout=60) as client:
        order_id = (await place(client, [(product, 3)])).json()["orderId"]
        responses = await asyncio.gather(*(client.post(f"/orders/{order_id}/cancel") for _ in range(20)))

    assert {r.status_code for r in responses} == {200}
    assert {r.json()["status"] for r in responses} == {"CANCELLED"}
    assert await db.fetchval("SELECT stock_qty FROM inventory.products WHERE id = $1", product) == 5


async def test_cancels_racing_new_orders_keep_the_books_balanced(orders_url, as_gateway, db, make_product):
    product = await make_product(stock=4)
    async with httpx.AsyncClient(base_url=orders_url, headers=as_gateway, timeout=60) as client:
        first = [(await place(client, [(product, 1)])).json()["orderId"] for _ in range(4)]
        results = await asyncio.gather(
            *(client.post(f"/orders/{oid}/cancel") for oid in first),
            *(place(client, [(product, 1)]) for _ in range(8)),
        )

    new_orders = [r for r in results[4:] if r.status_code == 201]
    assert all(r.status_code in (201, 409) for r in results[4:])
    stock = await db.fetchval("SELECT stock_qty FROM inventory.products WHERE id = $1", product)
    # starting stock = stock + units in orders that are not cancelled
    assert stock + len(new_orders) == 4


# --- Property: random batches of multi-line orders fired at once never break the books. ---

PRODUCTS = 3
lines_strategy = st.lists(st.tuples(st.integers(0, PRODUCTS - 1), st.integers(1, 3)), min_size=1, max_size=4)
batch_strategy = st.lists(lines_strategy, min_size=2, max_size=12)
stock_strategy = st.lists(st.integers(0, 6), min_size=PRODUCTS, max_size=PRODUCTS)


async def _run_batch(orders_url, as_gateway, admin_url, stocks, batch):
    import asyncpg

    from servicekit.db import plain_url

    conn = await asyncpg.connect(plain_url(admin_url))
    try:
        ids = [
            await conn.fetchval(
                "INSERT INTO inventory.products (name, price_cents, stock_qty)"
                " VALUES ('prop', 100, $1) RETURNING id",
                stock,
            )
            for stock in stocks
        ]
        async with httpx.AsyncClient(base_url=orders_url, headers=as_gateway, timeout=60) as client:
            responses = await asyncio.gather(
                *(place(client, [(ids[index], qty) for index, qty in lines]) for lines in batch)
            )
        statuses = [r.status_code for r in responses]
        assert set(statuses) <= {201, 409}, [r.text for r in responses if r.status_code not in (201, 409)]

        rows = await conn.fetch(
            "SELECT id, stock_qty FROM inventory.products WHERE id = ANY($1) ORDER BY id", ids
        )
        sold = await conn.fetch(
            """
            SELECT product_id, sum(qty) AS units FROM orders.order_items
             WHERE product_id = ANY($1) GROUP BY product_id
            """,
            ids,
        )
        units = {r["product_id"]: r["units"] for r in sold}
        for start, row in zip(stocks, rows, strict=True):
            assert row["stock_qty"] >= 0
            assert start == row["stock_qty"] + units.get(row["id"], 0)

        # All or nothing: each accepted order has every line it asked for (merged), each refused one none.
        for lines, response in zip(batch, responses, strict=True):
            if response.status_code == 201:
                wanted = Counter()
                for index, qty in lines:
                    wanted[ids[index]] += qty
                got = await conn.fetch(
                    "SELECT product_id, qty FROM orders.order_items WHERE order_id = $1",
                    response.json()["orderId"],
                )
                assert {g["product_id"]: g["qty"] for g in got} == dict(wanted)
    finally:
        await conn.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stocks=stock_strategy, batch=batch_strategy)
def test_concurrent_batches_never_oversell(orders_url, as_gateway, migrated_admin_url, stocks, batch):
    asyncio.run(_run_batch(orders_url, as_gateway, migrated_admin_url, stocks, batch))
