"""Orders racing the restocks of cancels on one product with little stock: never a 500, never oversold.

The defect these pin down (ADR 0001, "The decrement is the locked stock"): an order whose statement began
before a cancel's restock committed, and then waited for that product's row lock, was approved on the locked,
restocked stock, but its UPDATE built the new row from the snapshot's older version (stock 0 - 1) and the
CHECK (stock_qty >= 0) refused that before PostgreSQL re-read the row: HTTP 500, though the unit was there.
The first test makes that interleaving happen every time; the others fire the real mix at once, many times,
and a hypothesis property checks the books after any mix. Every test runs with both placements.
"""

import asyncio
from collections import Counter
from typing import Any

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devstack.testing import wait_until
from servicekit.db import plain_url

ROUNDS = 30
UNITS = 5


@pytest.fixture(scope="module")
def orders_url(orders_url_each_placement: str) -> str:
    """Every test here runs with ORDERS_PLACEMENT=batched and =single."""
    return orders_url_each_placement


async def place(client: httpx.AsyncClient, lines: list[tuple[int, int]]) -> httpx.Response:
    return await client.post("/orders", json={"items": [{"productId": p, "qty": q} for p, q in lines]})


async def held(conn: asyncpg.Connection, product_id: int) -> int:
    """Units of the product held by orders that still hold stock (neither cancelled nor expired)."""
    units: int = await conn.fetchval(
        """
        SELECT COALESCE(sum(i.qty), 0)
          FROM orders.order_items AS i JOIN orders.orders AS o ON o.id = i.order_id
         WHERE i.product_id = $1 AND o.status NOT IN ('CANCELLED', 'EXPIRED')
        """,
        product_id,
    )
    return units


async def waiting_on_locks(conn: asyncpg.Connection, marker: str) -> int:
    """Backends of this database whose statement contains ``marker`` and which wait for a lock (the marker
    must be in the statement's first kilobyte: pg_stat_activity keeps no more of it)."""
    count: int = await conn.fetchval(
        """
        SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()
           AND wait_event_type = 'Lock' AND strpos(query, $1) > 0
        """,
        marker,
    )
    return count


async def test_an_order_that_waited_on_a_cancels_restock_takes_the_restocked_unit(
    orders_url, as_gateway, db, make_product, migrated_admin_url
):
    """The interleaving, made to happen: the order's statement starts (its snapshot: stock 0) while the
    cancel that gives the last unit back waits for the product row; the cancel goes first, restocks and
    commits; the order then locks the row, sees 1, and must take it: 201 and stock 0 (it was a 500)."""
    product = await make_product(stock=1)
    blocker = await asyncpg.connect(plain_url(migrated_admin_url))
    async with httpx.AsyncClient(base_url=orders_url, headers=as_gateway, timeout=30) as client:
        first = await place(client, [(product, 1)])
        assert first.status_code == 201, first.text
        try:
            # Hold the row so the cancel and then the order queue on it, in that order.
            transaction = blocker.transaction()
            await transaction.start()
            await blocker.execute("SELECT 1 FROM inventory.products WHERE id = $1 FOR UPDATE", product)
            cancel = asyncio.create_task(client.post(f"/orders/{first.json()['orderId']}/cancel"))
            await wait_until(lambda: _waiting(db, "WITH previous AS", 1))
            second = asyncio.create_task(place(client, [(product, 1)]))
            await wait_until(lambda: _waiting(db, "WITH requested AS", 1))
            await transaction.rollback()
        finally:
            await blocker.close()
        cancelled, placed = await cancel, await second

    assert cancelled.status_code == 200, cancelled.text
    assert placed.status_code == 201, placed.text
    assert await db.fetchval("SELECT stock_qty FROM inventory.products WHERE id = $1", product) == 0
    assert await held(db, product) == 1


async def _waiting(db: asyncpg.Connection, marker: str, n: int) -> bool:
    return await waiting_on_locks(db, marker) >= n


async def test_the_batch_function_decides_and_writes_on_the_stock_it_locked(
    db, make_product, migrated_admin_url
):
    """orders.place_orders (a batch of two) waiting on a restock: each statement of the function has a fresh
    snapshot, so it decides and decrements on the restocked row; both orders get their unit."""
    product = await make_product(stock=0)
    blocker = await asyncpg.connect(plain_url(migrated_admin_url))
    batch = await asyncpg.connect(plain_url(migrated_admin_url))
    try:
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.execute(
            "UPDATE inventory.products SET stock_qty = stock_qty + 2 WHERE id = $1", product
        )
        call = asyncio.create_task(
            batch.fetch(
                """
                SELECT order_index, order_id, refused_lines
                  FROM orders.place_orders(ARRAY[1, 1], ARRAY[$1, $1]::bigint[], ARRAY[1, 1],
                                           ARRAY[NULL, NULL]::text[], ARRAY[NULL, NULL]::text[], 900)
                 ORDER BY order_index
                """,
                product,
            )
        )
        await wait_until(lambda: _waiting(db, "orders.place_orders", 1))
        await transaction.commit()
        rows = await call
    finally:
        await blocker.close()
        await batch.close()

    assert [row["refused_lines"] for row in rows] == [None, None]
    assert all(row["order_id"] is not None for row in rows)
    assert await db.fetchval("SELECT stock_qty FROM inventory.products WHERE id = $1", product) == 0


async def test_cancels_racing_orders_for_the_last_units_never_fail(orders_url, as_gateway, db, make_product):
    """The mix as it happens: orders take the last UNITS units, then their cancels and twice as many new
    orders go at once, ROUNDS times over. Every answer is a decided one (a refusal names a line that really
    was short), and the books balance."""
    async with httpx.AsyncClient(base_url=orders_url, headers=as_gateway, timeout=60) as client:
        for _ in range(ROUNDS):
            product = await make_product(stock=UNITS)
            first = [(await place(client, [(product, 1)])).json()["orderId"] for _ in range(UNITS)]
            results = await asyncio.gather(
                *(client.post(f"/orders/{order_id}/cancel") for order_id in first),
                *(place(client, [(product, 1)]) for _ in range(2 * UNITS)),
            )

            cancels, orders = results[:UNITS], results[UNITS:]
            assert [r.status_code for r in cancels] == [200] * UNITS
            assert {r.status_code for r in orders} <= {201, 409}, [
                r.text for r in orders if r.status_code not in (201, 409)
            ]
            for refusal in (r for r in orders if r.status_code == 409):
                assert all(i["available"] < i["requested"] for i in refusal.json()["items"]), refusal.text
            accepted = sum(r.status_code == 201 for r in orders)
            stock = await db.fetchval("SELECT stock_qty FROM inventory.products WHERE id = $1", product)
            assert stock + accepted == UNITS
            assert await held(db, product) == accepted


async def test_a_stock_check_the_statement_trips_is_a_409_not_a_500(orders_url, as_gateway, db, make_product):
    """Defence in depth: should the decrement ever be refused by a CHECK on products, the buyer gets the
    insufficient_stock refusal and nothing is written. The CHECK here is a real one, on this product only:
    it refuses any stock under 5, so taking 6 of 10 trips it."""
    product = await make_product(stock=10)
    constraint = f"test_stock_floor_{product}"
    await db.execute(
        f"ALTER TABLE inventory.products"
        f" ADD CONSTRAINT {constraint} CHECK (id <> {product} OR stock_qty >= 5)"
    )
    try:
        async with httpx.AsyncClient(base_url=orders_url, headers=as_gateway, timeout=30) as client:
            response = await place(client, [(product, 6)])
    finally:
        await db.execute(f"ALTER TABLE inventory.products DROP CONSTRAINT {constraint}")

    assert response.status_code == 409, response.text
    assert response.json()["code"] == "insufficient_stock"
    assert response.json()["items"] == [{"product_id": product, "requested": 6, "available": 10}]
    assert await db.fetchval("SELECT stock_qty FROM inventory.products WHERE id = $1", product) == 10
    assert await db.fetchval("SELECT count(*) FROM orders.order_items WHERE product_id = $1", product) == 0


# --- Property: any mix of cancels and new orders on two small stocks, fired at once, keeps the books. ---

PRODUCTS = 2
lines_strategy = st.lists(st.tuples(st.integers(0, PRODUCTS - 1), st.integers(1, 2)), min_size=1, max_size=3)
mix_strategy = st.fixed_dictionaries(
    {
        "stocks": st.lists(st.integers(0, 4), min_size=PRODUCTS, max_size=PRODUCTS),
        "before": st.lists(lines_strategy, min_size=1, max_size=5),
        "cancel": st.lists(st.booleans(), min_size=5, max_size=5),
        "after": st.lists(lines_strategy, min_size=1, max_size=8),
    }
)


def _merged(ids: list[int], lines: list[tuple[int, int]]) -> dict[int, int]:
    wanted: Counter[int] = Counter()
    for index, qty in lines:
        wanted[ids[index]] += qty
    return dict(wanted)


async def _run_mix(orders_url: str, as_gateway: dict[str, str], admin_url: str, mix: dict[str, Any]) -> None:
    conn = await asyncpg.connect(plain_url(admin_url))
    try:
        ids = [
            await conn.fetchval(
                "INSERT INTO inventory.products (name, price_cents, stock_qty)"
                " VALUES ('mix', 100, $1) RETURNING id",
                stock,
            )
            for stock in mix["stocks"]
        ]
        async with httpx.AsyncClient(base_url=orders_url, headers=as_gateway, timeout=60) as client:
            placed = [await place(client, [(ids[i], q) for i, q in lines]) for lines in mix["before"]]
            assert {r.status_code for r in placed} <= {201, 409}
            existing = [r.json()["orderId"] for r in placed if r.status_code == 201]
            to_cancel = [oid for oid, cancel in zip(existing, mix["cancel"], strict=False) if cancel]
            results = await asyncio.gather(
                *(client.post(f"/orders/{oid}/cancel") for oid in to_cancel),
                *(place(client, [(ids[i], q) for i, q in lines]) for lines in mix["after"]),
            )
        cancels, orders = results[: len(to_cancel)], results[len(to_cancel) :]
        assert [r.status_code for r in cancels] == [200] * len(cancels), [r.text for r in cancels]
        assert {r.status_code for r in orders} <= {201, 409}, [r.text for r in orders]

        for product_id, start in zip(ids, mix["stocks"], strict=True):
            stock = await conn.fetchval("SELECT stock_qty FROM inventory.products WHERE id = $1", product_id)
            assert stock >= 0
            assert stock + await held(conn, product_id) == start
        # Every acknowledged order holds exactly its lines; every refused one holds nothing.
        for lines, response in zip(mix["after"], orders, strict=True):
            if response.status_code == 201:
                order_id = response.json()["orderId"]
                got = await conn.fetch(
                    """
                    SELECT i.product_id, i.qty FROM orders.order_items AS i JOIN orders.orders AS o
                        ON o.id = i.order_id
                     WHERE i.order_id = $1 AND o.status = 'PENDING'
                    """,
                    order_id,
                )
                assert {g["product_id"]: g["qty"] for g in got} == _merged(ids, lines)
    finally:
        await conn.close()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mix=mix_strategy)
def test_any_mix_of_cancels_and_orders_keeps_the_books(orders_url, as_gateway, migrated_admin_url, mix):
    asyncio.run(_run_mix(orders_url, as_gateway, migrated_admin_url, mix))
