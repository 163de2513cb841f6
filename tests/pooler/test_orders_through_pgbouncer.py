"""The order promises hold through pgbouncer in transaction mode.

The orders service's own concurrency, idempotency and money-lifecycle tests run here unchanged, against
orders and payments apps (and the reconciler's engine) whose database URLs point at a real pgbouncer
(tests/pooler/conftest.py). They are imported, not copied, so the two runs can never drift apart. The tests
below them show why ``db_pooler`` exists: behind transaction pooling asyncpg's default statement cache
breaks, and with the setting it does not.
"""

from pathlib import Path
from types import ModuleType
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text

from devstack.pgbouncer import PgBouncer
from devstack.testing import load_module
from orders.settings import OrdersSettings
from servicekit.db import create_engine, plain_url

ORDERS_TESTS = Path(__file__).resolve().parents[2] / "services" / "orders" / "tests"


def _load(name: str) -> ModuleType:
    return load_module(ORDERS_TESTS / f"{name}.py", f"pooled_{name}")


helpers = _load("conftest")  # the orders tests' fixtures: their API client, reconciler, invariant check
concurrency = _load("test_concurrency")
idempotency = _load("test_idempotency")
lifecycle = _load("test_lifecycle")
races = _load("test_races")

# pytest collects what a module holds, so these run here with this folder's fixtures (the pooled apps and
# the pooled orders_engine behind ``reconciler``; test_races.py's ``slow_pair`` is shadowed in conftest).
orders = helpers.orders
api = helpers.api
reconciler = helpers.reconciler
invariants = helpers.invariants

test_two_orders_race_for_the_last_unit = concurrency.test_two_orders_race_for_the_last_unit
test_fifty_buyers_for_ten_units_sell_exactly_ten = (
    concurrency.test_fifty_buyers_for_ten_units_sell_exactly_ten
)
test_overlapping_orders_in_opposite_product_order_do_not_deadlock = (
    concurrency.test_overlapping_orders_in_opposite_product_order_do_not_deadlock
)
test_concurrent_cancels_give_stock_back_once = concurrency.test_concurrent_cancels_give_stock_back_once
test_cancels_racing_new_orders_keep_the_books_balanced = (
    concurrency.test_cancels_racing_new_orders_keep_the_books_balanced
)
test_concurrent_batches_never_oversell = concurrency.test_concurrent_batches_never_oversell

client = idempotency.client
test_the_same_key_and_body_replay_the_first_response = (
    idempotency.test_the_same_key_and_body_replay_the_first_response
)
test_a_refusal_is_a_decided_answer_and_is_replayed = (
    idempotency.test_a_refusal_is_a_decided_answer_and_is_replayed
)
test_the_same_key_with_another_body_is_refused = idempotency.test_the_same_key_with_another_body_is_refused
test_many_concurrent_requests_with_one_key_make_exactly_one_order = (
    idempotency.test_many_concurrent_requests_with_one_key_make_exactly_one_order
)
test_an_expired_key_is_treated_as_new = idempotency.test_an_expired_key_is_treated_as_new
test_a_key_reused_after_its_ttl_with_another_body_makes_a_new_order_never_the_old_one = (
    idempotency.test_a_key_reused_after_its_ttl_with_another_body_makes_a_new_order_never_the_old_one
)
test_a_stale_in_flight_key_whose_order_was_made_answers_with_that_order = (
    idempotency.test_a_stale_in_flight_key_whose_order_was_made_answers_with_that_order
)

# The money lifecycle: orders calls payments with idempotency keys; both services' databases behind the
# pooler. Concurrent authorizations and refunds of one order, and money steps racing a cancel (after a
# reconciler pass over the pooler, ADR 0004's invariants hold).
new_order = lifecycle.new_order
test_ten_concurrent_authorizations_make_one_payment = (
    lifecycle.test_ten_concurrent_authorizations_make_one_payment
)
test_concurrent_declined_authorizations_count_each_attempt_once = (
    lifecycle.test_concurrent_declined_authorizations_count_each_attempt_once
)
test_ten_concurrent_refunds_of_thirty_percent_exactly_three_succeed = (
    lifecycle.test_ten_concurrent_refunds_of_thirty_percent_exactly_three_succeed
)
test_authorize_racing_cancel = races.test_authorize_racing_cancel
test_capture_racing_cancel = races.test_capture_racing_cancel


async def test_the_orders_and_payments_roles_really_go_through_the_pooler(
    pgbouncer: PgBouncer,
    orders: helpers.OrdersApi,
    new_order: Any,
    pooled_database_urls: dict[str, str],
) -> None:
    order_id, _ = await new_order()
    assert (await orders.authorize(order_id)).json()["status"] == "AUTHORIZED"
    assert (await orders.capture(order_id)).json()["status"] == "PAID"

    assert {url.rsplit("@", 1)[1].split("/")[0] for url in pooled_database_urls.values()} == {
        f"127.0.0.1:{pgbouncer.port}"
    }
    pools = {row["user"]: row for row in pgbouncer.show("POOLS")}
    assert {"orders_svc", "payments_svc"} <= set(pools), pools
    assert {pools[user]["pool_mode"] for user in ("orders_svc", "payments_svc")} == {"transaction"}


# --- Why the setting: the two server connections of one pool, taken in a known order. ---


async def _two_server_connections_apart(url: str) -> tuple[asyncpg.Connection, asyncpg.Connection]:
    """Two client connections that each hold a server connection in an open transaction, so the pool has
    two servers; released (commit), the next client is served by the one released last (pgbouncer's LIFO)."""
    first = await asyncpg.connect(url, statement_cache_size=0)
    second = await asyncpg.connect(url, statement_cache_size=0)
    for conn in (first, second):
        await conn.execute("BEGIN")
        await conn.execute("SELECT 1")
    return first, second


async def test_a_cached_prepared_statement_breaks_behind_transaction_pooling(
    pgbouncer: PgBouncer, pooled_database_urls: dict[str, str]
) -> None:
    url = plain_url(pooled_database_urls["inventory"])
    holder, other = await _two_server_connections_apart(url)
    cached = await asyncpg.connect(url)  # asyncpg's default: named statements, cached per connection
    try:
        await holder.execute("COMMIT")
        await other.execute("COMMIT")
        # Prepared (named) on the server released last, then that server goes back to the pool ...
        assert await cached.fetchval("SELECT $1::int + 1", 1) == 2
        # ... and is taken by someone else, so the next run of the cached statement lands on the other one.
        await other.execute("BEGIN")
        await other.execute("SELECT 1")
        with pytest.raises(asyncpg.InvalidSQLStatementNameError):
            await cached.fetchval("SELECT $1::int + 1", 1)
    finally:
        await other.execute("ROLLBACK")
        for conn in (holder, other, cached):
            await conn.close()


async def test_the_pooler_setting_keeps_statements_within_their_transaction(
    pgbouncer: PgBouncer, pooled_database_urls: dict[str, str]
) -> None:
    url = plain_url(pooled_database_urls["orders"])
    holder, other = await _two_server_connections_apart(url)
    settings = OrdersSettings(database_url=pooled_database_urls["orders"], db_pooler="transaction")
    engine = create_engine(settings)
    try:
        await holder.execute("COMMIT")
        await other.execute("COMMIT")
        async with engine.connect() as conn:
            autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
            assert (await autocommit.execute(text("SELECT CAST(:n AS int) + 1"), {"n": 1})).scalar() == 2
            await other.execute("BEGIN")
            await other.execute("SELECT 1")
            assert (await autocommit.execute(text("SELECT CAST(:n AS int) + 1"), {"n": 1})).scalar() == 2
            # The timeouts the app can no longer send as startup parameters come from the pooler.
            timeout = (await autocommit.execute(text("SELECT current_setting('lock_timeout')"))).scalar()
            assert timeout == "5s"
    finally:
        await other.execute("ROLLBACK")
        await engine.dispose()
        for conn in (holder, other):
            await conn.close()
