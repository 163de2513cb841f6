"""The background jobs the apps run, in every replica at once.

Each orders and payments process prunes expired idempotency keys (servicekit.idempotency.prune_periodically),
and each orders process sweeps expired reservations (orders.expiry.sweep_expired) and reconciles orders
whose call to payments was left open (orders.reconciler.reconcile_once), all on timers, so with replicas
several of each run together. Here four "replicas" (each its own engine and pool, two of them behind
pgbouncer in transaction mode) run them at once:

- the prune is one DELETE, so concurrent prunes split the expired keys between them: every expired,
  finished key goes exactly once, and nothing live (a fresh key, an expired key still in flight) is touched;
- the sweeper and the reconciler claim their rows with FOR UPDATE SKIP LOCKED (the reconciler then leases
  them), so each overdue reservation is expired and restocked by exactly one sweep and each half-settled
  order is settled by exactly one reconciler, even where both jobs want the same order, and ADR 0004's
  invariants hold afterwards (services/orders/tests/conftest.py's assert_money_and_stock_invariants).

(The notifications worker, the third job the issue names, runs in two replicas at once beside this file:
test_notifications_workers_in_every_replica.py.)
"""

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from devstack.embedded import free_port
from devstack.pgbouncer import PGBOUNCER, PgBouncer
from devstack.testing import LiveServer, load_module, wait_until
from orders.app import create_app as create_orders_app
from orders.expiry import sweep_expired
from orders.payments import HttpPaymentsClient, RetryPolicy
from orders.reconciler import reconcile_once
from orders.settings import OrdersSettings
from payments.app import create_app as create_payments_app
from payments.processor import SimulatedProcessor
from payments.settings import PaymentsSettings
from servicekit.db import create_engine
from servicekit.idempotency import IdempotencyStore

EXPIRED = 300
HAVE_PGBOUNCER = os.path.exists(PGBOUNCER)


# services/orders/tests/conftest.py: its OrdersApi and assert_money_and_stock_invariants.
ORDERS_CONFTEST = Path(__file__).resolve().parents[2] / "services/orders/tests/conftest.py"
helpers = load_module(ORDERS_CONFTEST, "replicas_orders_helpers")


@pytest.fixture
async def replica_engines(
    service_database_urls: dict[str, str], postgres_server_url: str
) -> AsyncIterator[list[AsyncEngine]]:
    """Four orders "replicas": engines of their own, two direct and two behind a real pgbouncer in
    transaction mode (only the direct two where pgbouncer is not installed; on CI it must be)."""
    if not HAVE_PGBOUNCER and os.environ.get("CI"):
        pytest.fail(f"no {PGBOUNCER} (apt-get install pgbouncer)")
    url = service_database_urls["orders"]
    settings = [OrdersSettings(database_url=url, db_pool_size=4) for _ in range(2)]
    bouncer = None
    if HAVE_PGBOUNCER:
        parts = urlsplit(url)
        assert parts.username
        assert parts.password
        bouncer = PgBouncer(postgres_server_url, {parts.username: parts.password}).start()
        pooled = bouncer.url_for(url)
        settings += [
            OrdersSettings(database_url=pooled, db_pool_size=4, db_pooler="transaction") for _ in range(2)
        ]
    engines = [create_engine(s) for s in settings]
    try:
        yield engines
    finally:
        for engine in engines:
            await engine.dispose()
        if bouncer is not None:
            bouncer.stop()


@pytest.fixture
def replicas_stores(replica_engines: list[AsyncEngine]) -> list[IdempotencyStore]:
    return [
        IdempotencyStore(engine, "orders.idempotency_keys", ttl=timedelta(hours=24))
        for engine in replica_engines
    ]


async def test_replicas_pruning_at_once_remove_each_expired_key_exactly_once(
    replicas_stores: list[IdempotencyStore], db: asyncpg.Connection
) -> None:
    run = uuid.uuid4().hex[:8]
    await db.executemany(
        """INSERT INTO orders.idempotency_keys (key, fingerprint, state, response_status, created_at,
                  locked_at)
           VALUES ($1, 'f', $2, $3, now() - $4::interval, now() - $4::interval)""",
        [(f"prune-{run}-old-{i}", "done", 201, timedelta(hours=25)) for i in range(EXPIRED)]
        + [(f"prune-{run}-fresh-{i}", "done", 201, timedelta(hours=1)) for i in range(50)]
        + [(f"prune-{run}-busy-{i}", "in_flight", None, timedelta(hours=25)) for i in range(20)],
    )
    expired_everywhere = await db.fetchval(
        "SELECT count(*) FROM orders.idempotency_keys WHERE created_at < now() - interval '24 hours'"
        " AND state = 'done'"
    )

    async def claims() -> int:
        claimed = 0
        for i in range(20):
            await replicas_stores[i % len(replicas_stores)].claim(f"prune-{run}-new-{i}", "fp")
            claimed += 1
        return claimed

    results = await asyncio.gather(*(store.prune() for store in replicas_stores for _ in range(3)), claims())

    # Each expired key is deleted by exactly one of the prunes (the count includes other tests' keys).
    assert sum(results[:-1]) == expired_everywhere >= EXPIRED
    assert results[-1] == 20
    remaining = await db.fetch(
        "SELECT split_part(key, '-', 3) AS kind, count(*) FROM orders.idempotency_keys"
        " WHERE key LIKE $1 GROUP BY 1",
        f"prune-{run}-%",
    )
    assert {row["kind"]: row["count"] for row in remaining} == {"fresh": 50, "busy": 20, "new": 20}


# Each call to payments times out after 0.5 s and all retries together after 1 s, so a processor taking
# 2.5 s answers after orders gave up (the authorization is held at payments, orders never heard of it).
TIGHT: dict[str, Any] = {
    "payments_timeout_s": 0.5,
    "payments_retry_timeout_s": 1.0,
    "payments_retry_attempts": 2,
    "payments_retry_wait_initial_s": 0.02,
    "payments_retry_wait_max_s": 0.1,
    "payments_retry_wait_jitter_s": 0.02,
    "expiry_sweep_interval_s": 3_600,  # this app's own jobs stay out of the way: the replicas run them
    "reconcile_interval_s": 3_600,
}
SLOW_S = 2.5


async def test_sweepers_and_reconcilers_in_every_replica_expire_restock_and_settle_each_order_once(
    replica_engines: list[AsyncEngine],
    service_database_urls: dict[str, str],
    db: asyncpg.Connection,
    make_product: Callable[..., Awaitable[int]],
    credential_settings: Callable[[str], dict[str, Any]],
    service_tokens: dict[str, str],
    as_gateway: dict[str, str],
) -> None:
    expiring = await make_product(stock=50, price_cents=1_200)
    cancelled = await make_product(stock=50, price_cents=1_500)
    port = free_port()
    payments_url = f"http://127.0.0.1:{port}"

    def payments_app() -> Any:
        return create_payments_app(
            PaymentsSettings(
                database_url=service_database_urls["payments"], **credential_settings("payments")
            )
        )

    orders_settings = OrdersSettings(
        database_url=service_database_urls["orders"],
        payments_url=payments_url,
        **TIGHT,
        **credential_settings("orders"),
    )
    with LiveServer(create_orders_app(orders_settings)) as orders_server:
        async with helpers.orders_api(orders_server.url, as_gateway) as orders:

            async def place(product: int, count: int) -> list[int]:
                return [(await orders.place(product, 1 + i % 2))["orderId"] for i in range(count)]

            pending = await place(expiring, 8)  # reservations that run out
            declined = await place(expiring, 4)  # PAYMENT_FAILED, then run out
            lost = await place(expiring, 4)  # authorized at payments after orders gave up, then run out
            unanswered = await place(expiring, 4)  # authorize while payments is down, then run out
            voids = await place(cancelled, 6)  # AUTHORIZED, cancelled while payments is down
            refunds = await place(cancelled, 6)  # PAID, cancelled while payments is down
            payments = payments_app()
            with LiveServer(payments, port=port):
                for order_id in declined:
                    response = await orders.authorize(order_id, helpers.DECLINED_CARD)
                    assert response.json()["status"] == "PAYMENT_FAILED", response.text
                for order_id in voids + refunds:
                    assert (await orders.authorize(order_id)).json()["status"] == "AUTHORIZED"
                for order_id in refunds:
                    assert (await orders.capture(order_id)).json()["status"] == "PAID"
                payments.state.processor = SimulatedProcessor(latency_s=SLOW_S)
                slow = await asyncio.gather(*(orders.authorize(order_id) for order_id in lost))
                assert {r.status_code for r in slow} == {503}, [r.text for r in slow]

                async def held_at_payments() -> bool:
                    held = await db.fetchval(
                        "SELECT count(*) FROM payments.payments"
                        " WHERE order_id = ANY($1) AND status = 'authorized'",
                        lost,
                    )
                    return bool(held == len(lost))

                await wait_until(held_at_payments, within_s=30)
            # Payments is down now.
            for order_id in voids + refunds:
                response = await orders.cancel(order_id)
                assert (response.status_code, response.json()["status"]) == (200, "CANCELLED"), response.text
            for order_id in unanswered:
                assert (await orders.authorize(order_id)).status_code == 503

    mine = pending + declined + lost + unanswered + voids + refunds
    # Time passes: every reservation is overdue and every open call's budget has run out.
    await db.execute(
        "UPDATE orders.orders SET expires_at = now() WHERE id = ANY($1)",
        pending + declined + lost + unanswered,
    )
    await db.execute(
        "UPDATE orders.orders SET reconcile_at = now() WHERE id = ANY($1) AND reconcile_at IS NOT NULL", mine
    )

    async def unfinished() -> int:
        count: int = await db.fetchval(
            "SELECT count(*) FROM orders.orders WHERE id = ANY($1)"
            " AND (status IN ('PENDING', 'PAYMENT_FAILED') OR reconcile_at IS NOT NULL)",
            mine,
        )
        return count

    swept: list[int] = []
    settled: list[int] = []
    done = asyncio.Event()

    async def replica(engine: AsyncEngine) -> None:
        """One orders process's two jobs, as its timers run them, but back to back until all is done."""
        async with httpx.AsyncClient(base_url=payments_url, timeout=10) as http:
            client = HttpPaymentsClient(
                http,
                RetryPolicy(attempts=3, timeout_s=5, wait_initial_s=0.02),
                token=SecretStr(service_tokens["orders"]),
            )

            async def sweeper() -> None:
                while not done.is_set():
                    swept.extend(await sweep_expired(engine, batch=3))

            async def reconciler() -> None:
                while not done.is_set():
                    settled.extend(await reconcile_once(engine, client, batch=4))

            await asyncio.gather(sweeper(), reconciler())

    async def watch() -> None:
        async def finished() -> bool:
            return await unfinished() == 0

        try:
            await wait_until(finished, within_s=60)
        finally:
            done.set()

    with LiveServer(payments_app(), port=port):  # payments is back
        await asyncio.gather(watch(), *(replica(engine) for engine in replica_engines))

    # No order was expired (and restocked) twice, nor settled twice, by the replicas. (Another orders app
    # of this test run may have taken a few: it is one more replica, and the facts below still hold.)
    ours_swept = [order_id for order_id in swept if order_id in mine]
    ours_settled = [order_id for order_id in settled if order_id in mine]
    assert len(ours_swept) == len(set(ours_swept)), ours_swept
    assert len(ours_settled) == len(set(ours_settled)), ours_settled
    assert set(ours_swept) <= set(pending + declined + lost + unanswered)
    rows = await db.fetch("SELECT id, status, total_cents FROM orders.orders WHERE id = ANY($1)", mine)
    status = {row["id"]: row["status"] for row in rows}
    total = {row["id"]: row["total_cents"] for row in rows}
    assert {status[o] for o in pending + declined + unanswered} == {"EXPIRED"}
    assert {status[o] for o in voids + refunds} == {"CANCELLED"}
    # A lost authorization either reached its order first (AUTHORIZED: it no longer expires) or the sweep
    # did (EXPIRED: the reconciler voids it); never both.
    assert {status[o] for o in lost} <= {"AUTHORIZED", "EXPIRED"}

    payments_rows = await db.fetch(
        """SELECT p.order_id, p.status, p.amount_cents, p.captured_cents, p.refunded_cents,
                  (SELECT count(*) FROM payments.refunds AS r WHERE r.payment_id = p.id) AS refund_rows
             FROM payments.payments AS p WHERE p.order_id = ANY($1)""",
        mine,
    )
    held = {row["order_id"]: row for row in payments_rows if row["status"] != "declined"}
    assert set(held) == set(voids + refunds + lost)  # one live payment each, nothing for the others
    assert len([r for r in payments_rows if r["status"] != "declined"]) == len(held)
    assert {held[o]["status"] for o in voids} == {"voided"}
    for order_id in refunds:  # refunded once, in full
        payment = held[order_id]
        assert (payment["status"], payment["refund_rows"]) == ("refunded", 1)
        assert payment["captured_cents"] == payment["refunded_cents"] == total[order_id]
    for order_id in lost:
        assert held[order_id]["status"] == ("authorized" if status[order_id] == "AUTHORIZED" else "voided")

    # Stock came back exactly once for every expired and cancelled order.
    still_reserved = sum(1 + i % 2 for i, o in enumerate(lost) if status[o] == "AUTHORIZED")
    assert await db.fetchval("SELECT stock_qty FROM inventory.products WHERE id = $1", expiring) == (
        50 - still_reserved
    )
    assert await db.fetchval("SELECT stock_qty FROM inventory.products WHERE id = $1", cancelled) == 50
    assert await unfinished() == 0
    await helpers.assert_money_and_stock_invariants(db, {expiring: 50, cancelled: 50})
