"""Group commit (ORDERS_PLACEMENT=batched): the orders that arrive together are decided in one statement and
one commit, each still on its own, all or nothing, in arrival order, with its exact refusal.

The deterministic tests build a batch exactly with ``OrderBatcher.place_batch``; the others go through live
servers, as a shopper does."""

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from sqlalchemy import event, text
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from devstack.testing import LiveServer
from orders import service
from orders.app import create_app
from orders.batcher import OrderBatcher
from orders.errors import InsufficientStock
from orders.repository import Placement
from orders.schemas import OrderLineIn
from orders.settings import OrdersSettings

RESERVATION_S = 900.0


@pytest.fixture
async def batcher(orders_engine: AsyncEngine) -> AsyncIterator[OrderBatcher]:
    batcher = OrderBatcher(orders_engine, reservation_s=RESERVATION_S, max_batch=64)
    try:
        yield batcher
    finally:
        await batcher.close()


@pytest.fixture
async def statements(orders_engine: AsyncEngine) -> AsyncIterator[list[str]]:
    """Every statement the test's engine sends, and "BEGIN" for every real BEGIN (see test_round_trips)."""
    async with orders_engine.connect():  # the engine's first connection initializes the dialect: not ours
        pass
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement)

    original = AsyncAdapt_asyncpg_connection._start_transaction

    async def counted_start(self):  # type: ignore[no-untyped-def]
        if self.isolation_level != "autocommit":
            seen.append("BEGIN")
        await original(self)

    event.listen(orders_engine.sync_engine, "before_cursor_execute", record)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(AsyncAdapt_asyncpg_connection, "_start_transaction", counted_start)
        yield seen
    event.remove(orders_engine.sync_engine, "before_cursor_execute", record)


def order(*lines: tuple[int, int], key: str | None = None) -> Placement:
    return Placement(sorted(lines), key, None)


async def stock_of(db, product_id: int) -> int:
    return await db.fetchval("SELECT stock_qty FROM inventory.products WHERE id = $1", product_id)


async def test_arrival_order_decides_who_gets_the_last_units(batcher, db, make_product):
    mug = await make_product(stock=3, price_cents=500)

    first, second, third, fourth = await batcher.place_batch(
        [order((mug, 2)), order((mug, 2)), order((mug, 1)), order((mug, 1))]
    )

    assert first.order_id is not None
    assert first.total_cents == 1_000
    assert second.order_id is None
    assert second.refused_lines == [{"product_id": mug, "requested": 2, "available": 1}]
    assert third.order_id is not None
    assert third.total_cents == 500
    assert fourth.refused_lines == [{"product_id": mug, "requested": 1, "available": 0}]
    assert await stock_of(db, mug) == 0
    # One commit for the whole batch: both accepted orders were written by one transaction.
    xmins = await db.fetchval(
        "SELECT count(DISTINCT xmin::text) FROM orders.orders WHERE id = ANY($1)",
        [first.order_id, third.order_id],
    )
    assert xmins == 1


async def test_orders_overlapping_on_several_products_are_each_all_or_nothing(batcher, db, make_product):
    a = await make_product(stock=1, price_cents=100)
    b = await make_product(stock=2, price_cents=10)
    c = await make_product(stock=2, price_cents=1)
    missing = 2**62

    results = await batcher.place_batch(
        [
            order((a, 1), (b, 1)),  # takes a's only unit
            order((b, 2), (c, 1)),  # b has 1 left: refused, c untouched
            order((a, 1), (c, 1)),  # a is gone: refused
            order((b, 1), (c, 2)),  # what the refusals left
            order((c, 1), (missing, 1)),  # unknown product: refused, nothing taken
        ]
    )

    accepted = [r.order_id is not None for r in results]
    assert accepted == [True, False, False, True, False]
    assert results[1].refused_lines == [
        {"product_id": b, "requested": 2, "available": 1},
        {"product_id": c, "requested": 1, "available": 2},
    ]
    assert results[2].refused_lines == [
        {"product_id": a, "requested": 1, "available": 0},
        {"product_id": c, "requested": 1, "available": 2},
    ]
    assert results[4].refused_lines == [
        {"product_id": c, "requested": 1, "available": 0},
        {"product_id": missing, "requested": 1, "available": None},
    ]
    assert [await stock_of(db, p) for p in (a, b, c)] == [0, 0, 0]
    lines = await db.fetch(
        "SELECT order_id, product_id, qty FROM orders.order_items WHERE order_id = ANY($1)"
        " ORDER BY order_id, product_id",
        [r.order_id for r in results if r.order_id is not None],
    )
    assert [(row["order_id"], row["product_id"], row["qty"]) for row in lines] == [
        (results[0].order_id, a, 1),
        (results[0].order_id, b, 1),
        (results[3].order_id, b, 1),
        (results[3].order_id, c, 2),
    ]


async def test_the_same_claim_twice_in_one_batch_makes_one_order(batcher, db, make_product):
    mug = await make_product(stock=5)
    key = f"checkout-{uuid.uuid4()}"
    await db.execute(
        "INSERT INTO orders.idempotency_keys (key, fingerprint, state, created_at, locked_at)"
        " VALUES ($1, 'fp', 'in_flight', now(), now())",
        key,
    )

    first, again, other = await batcher.place_batch(
        [order((mug, 2), key=key), order((mug, 2), key=key), order((mug, 1))]
    )

    assert first.order_id is not None
    assert not first.replayed
    assert again.replayed
    assert again.order_id == first.order_id
    assert again.total_cents == first.total_cents
    assert other.order_id is not None
    assert other.order_id != first.order_id
    assert await db.fetchval("SELECT count(*) FROM orders.orders WHERE idempotency_key = $1", key) == 1
    assert await stock_of(db, mug) == 2


async def test_a_failing_batch_writes_nothing(batcher, db, make_product):
    mug = await make_product(stock=5)

    # Two lines for one product break the order_items key: the statement fails as a whole.
    with pytest.raises(IntegrityError):
        await batcher.place_batch([order((mug, 1)), Placement([(mug, 1), (mug, 1)], None, None)])

    assert await stock_of(db, mug) == 5
    assert await db.fetchval("SELECT count(*) FROM orders.order_items WHERE product_id = $1", mug) == 0


async def test_one_orders_failure_does_not_fail_the_others_of_its_batch(
    batcher, orders_engine, statements, db, make_product
):
    mug = await make_product(stock=10)

    async def good() -> int:
        placed = await service.place_order(
            orders_engine, [OrderLineIn(productId=mug, qty=1)], reservation_s=RESERVATION_S, batcher=batcher
        )
        return placed.orderId

    outcomes = await asyncio.gather(
        good(), batcher.place([(mug, 1), (mug, 1)], None, None), good(), good(), return_exceptions=True
    )

    assert isinstance(outcomes[1], IntegrityError)
    assert all(isinstance(o, int) for o in (outcomes[0], outcomes[2], outcomes[3])), outcomes
    # They were one batch, which failed; each good order was then placed alone.
    assert sum("place_orders" in s for s in statements) == 1
    assert sum("place_orders" not in s and "FOR UPDATE" in s for s in statements) == 3
    assert await stock_of(db, mug) == 7


async def test_orders_placed_together_are_one_statement_and_one_commit(
    batcher, orders_engine, statements, db, make_product
):
    mug = await make_product(stock=100)
    # Show the instrument sees transactions: a transaction on this engine is a BEGIN.
    async with orders_engine.begin() as conn:
        await conn.execute(text("SELECT 1"))
    assert "BEGIN" in statements, statements
    statements.clear()

    async def place() -> int:
        placed = await service.place_order(
            orders_engine, [OrderLineIn(productId=mug, qty=1)], reservation_s=RESERVATION_S, batcher=batcher
        )
        return placed.orderId

    order_ids = await asyncio.gather(*(place() for _ in range(20)))

    assert len(set(order_ids)) == 20
    assert len(statements) == 1, statements  # no BEGIN, no COMMIT: the statement is the transaction
    assert "place_orders" in statements[0]
    xmins = await db.fetchval(
        "SELECT count(DISTINCT xmin::text) FROM orders.orders WHERE id = ANY($1)", order_ids
    )
    assert xmins == 1
    assert await stock_of(db, mug) == 80


async def test_an_idle_database_takes_the_first_order_at_once(
    batcher, orders_engine, statements, db, make_product
):
    mug = await make_product(stock=10)

    for _ in range(3):  # one after another: each is a batch of one, sent without waiting for company
        await service.place_order(
            orders_engine, [OrderLineIn(productId=mug, qty=1)], reservation_s=RESERVATION_S, batcher=batcher
        )

    # ... and a batch of one is the single path's own statement (PLACE_ORDER), so it costs nothing extra.
    assert len(statements) == 3, statements
    assert all("FOR UPDATE" in s and "place_orders" not in s for s in statements)
    assert await stock_of(db, mug) == 7


async def test_a_refusal_in_a_batch_is_the_same_error_as_alone(batcher, orders_engine, make_product):
    mug = await make_product(stock=1)

    outcomes = await asyncio.gather(
        *(
            service.place_order(
                orders_engine,
                [OrderLineIn(productId=mug, qty=1)],
                reservation_s=RESERVATION_S,
                batcher=batcher,
            )
            for _ in range(3)
        ),
        return_exceptions=True,
    )

    refused = [o for o in outcomes if isinstance(o, InsufficientStock)]
    assert len(refused) == 2
    assert all(r.extra["items"] == [{"product_id": mug, "requested": 1, "available": 0}] for r in refused)


@pytest.fixture
def two_orders_servers(service_database_urls, payments_url, credential_settings) -> Iterator[list[str]]:
    """Two orders processes on one database, both batching (as `task up` runs several)."""

    def server() -> LiveServer:
        settings = OrdersSettings(
            database_url=service_database_urls["orders"],
            payments_url=payments_url,
            placement="batched",
            **credential_settings("orders"),
        )
        return LiveServer(create_app(settings))

    with server() as one, server() as two:
        yield [one.url, two.url]


async def test_two_batching_processes_never_deadlock_or_oversell(
    two_orders_servers, as_gateway, db, make_product
):
    a = await make_product(stock=1_000)
    b = await make_product(stock=1_000)
    hot = await make_product(stock=25)
    forward = [(a, 1), (b, 1), (hot, 1)]
    backward = [(hot, 1), (b, 1), (a, 1)]

    async with (
        httpx.AsyncClient(base_url=two_orders_servers[0], headers=as_gateway, timeout=60) as one,
        httpx.AsyncClient(base_url=two_orders_servers[1], headers=as_gateway, timeout=60) as two,
    ):
        responses = await asyncio.gather(
            *(
                (one if i % 2 else two).post(
                    "/orders",
                    json={"items": [{"productId": p, "qty": q} for p, q in (forward if i % 3 else backward)]},
                )
                for i in range(80)
            ),
            *(
                (two if i % 2 else one).post("/orders", json={"items": [{"productId": a, "qty": 1}]})
                for i in range(40)
            ),
        )

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 25 + 40, 409: 55}, {r.text for r in responses if r.status_code not in (201, 409)}
    assert await stock_of(db, hot) == 0
    assert await stock_of(db, b) == 1_000 - 25
    assert await stock_of(db, a) == 1_000 - 25 - 40
