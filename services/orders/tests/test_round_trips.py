"""On a hot product the row-lock hold time is the throughput, so the order transaction must reach PostgreSQL
as one statement in one round trip: no BEGIN, no COMMIT, no read-then-write. Batched, a batch is that one
statement (test_batching shows many orders in it, with one commit)."""

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection

from devstack.testing import LiveServer
from orders.app import create_app
from orders.settings import OrdersSettings


@pytest.fixture(scope="module", params=["batched", "single"])
def counted_orders(request, service_database_urls, credential_settings):
    app = create_app(
        OrdersSettings(
            database_url=service_database_urls["orders"],
            placement=request.param,
            **credential_settings("orders"),
        )
    )
    seen: list[str] = []
    with LiveServer(app) as server:
        event.listen(
            app.state.engine.sync_engine, "before_cursor_execute", lambda *args: seen.append(args[2])
        )
        # SQLAlchemy's asyncpg adapter sends BEGIN lazily from _start_transaction, and skips it in autocommit;
        # SQLAlchemy's own "begin" event fires either way, so it cannot tell. Record the real ones.
        original = AsyncAdapt_asyncpg_connection._start_transaction

        async def counted_start(self):
            if self.isolation_level != "autocommit":
                seen.append("BEGIN")
            await original(self)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(AsyncAdapt_asyncpg_connection, "_start_transaction", counted_start)
            yield server.url, seen


@pytest.mark.parametrize("stock", [10, 0], ids=["accepted", "refused"])
async def test_placing_an_order_is_a_single_statement_without_begin_or_commit(
    counted_orders, as_gateway, db, make_product, stock
):
    url, seen = counted_orders
    a = await make_product(stock=stock)
    b = await make_product(stock=stock)

    async with httpx.AsyncClient(base_url=url, headers=as_gateway) as client:
        # Show the instrument sees transactions: a session-backed read is wrapped in BEGIN … COMMIT.
        seen.clear()
        read = await client.get("/orders", params={"limit": 1})
        assert read.status_code == 200, read.text
        assert "BEGIN" in seen, seen
        seen.clear()
        response = await client.post(
            "/orders", json={"items": [{"productId": b, "qty": 1}, {"productId": a, "qty": 2}]}
        )

    assert response.status_code == (201 if stock else 409)
    assert len(seen) == 1, seen
    # Batched, a lone order is a batch of one, which is sent as PLACE_ORDER itself.
    assert "FOR UPDATE" in seen[0]
    assert "BEGIN" not in seen
    # …and that one statement wrote the order's event too (issue 14), or, refused, none.
    placed_events = await db.fetchval(
        "SELECT count(*) FROM outbox.events WHERE type = 'order.placed'"
        " AND data @> jsonb_build_object('items',"
        "                                jsonb_build_array(jsonb_build_object('product_id', $1::bigint)))",
        a,
    )
    assert placed_events == (1 if stock else 0)
