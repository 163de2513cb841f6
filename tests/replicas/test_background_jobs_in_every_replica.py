"""The one background job the apps run, in every replica at once: the idempotency-key pruner.

Each orders and payments process prunes expired keys on a timer (servicekit.idempotency.prune_periodically),
so with replicas several prune together, while requests claim keys. The prune is one DELETE, so concurrent
prunes split the expired keys between them: every expired, finished key goes exactly once, and nothing live
(a fresh key, an expired key still in flight) is touched. Here four "replicas" (each its own engine and pool,
two of them behind pgbouncer in transaction mode) prune at once, repeatedly, while new keys are claimed.

(The issue also names an expiry sweeper, a reconciler and a worker; none of them exists in this repository.)
"""

import asyncio
import os
import uuid
from datetime import timedelta
from urllib.parse import urlsplit

import asyncpg
import pytest

from orders.settings import OrdersSettings
from servicekit.db import create_engine
from servicekit.idempotency import IdempotencyStore
from servicekit.pgbouncer import PGBOUNCER, PgBouncer

EXPIRED = 300
HAVE_PGBOUNCER = os.path.exists(PGBOUNCER)


@pytest.fixture
async def replicas_stores(service_database_urls: dict[str, str], postgres_server_url: str):
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
        yield [
            IdempotencyStore(engine, "orders.idempotency_keys", ttl=timedelta(hours=24)) for engine in engines
        ]
    finally:
        for engine in engines:
            await engine.dispose()
        if bouncer is not None:
            bouncer.stop()


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
