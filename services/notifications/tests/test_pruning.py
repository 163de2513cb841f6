"""Outbox pruning: an event is deleted, with its jobs, deliveries and attempts, only once it is older than the
retention and every consumer has finished with it (dispatched; no job or delivery pending; published when
the relay is on). Run as the worker's own role, whose grants are part of what is tested."""

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from devstack.embedded import free_port
from notifications import repository

OLD = timedelta(days=8)  # past the default retention of 7 days
RETENTION_S = 7 * 86_400
_aggregate_ids = iter(range(1, 10**9))  # order ids no other test uses (above 10**15)


async def exists(db, event_id: str) -> bool:
    return bool(
        await db.fetchval("SELECT count(*) FROM outbox.events WHERE event_id = $1", uuid.UUID(event_id))
    )


async def rows_of(db, event_id: str) -> dict[str, int]:
    """How many jobs, deliveries and attempts still refer to the event."""
    row = await db.fetchrow(
        """
        SELECT (SELECT count(*) FROM notifications.jobs WHERE event_id = $1) AS jobs,
               (SELECT count(*) FROM notifications.webhook_deliveries WHERE event_id = $1) AS deliveries,
               (SELECT count(*) FROM notifications.webhook_attempts AS a
                  JOIN notifications.webhook_deliveries AS d ON d.id = a.delivery_id WHERE d.event_id = $1)
                 AS attempts
        """,
        uuid.UUID(event_id),
    )
    return dict(row)


@pytest.fixture
async def engine(service_database_urls):
    engine = create_async_engine(service_database_urls["notifications"])
    try:
        yield engine
    finally:
        await engine.dispose()


async def prune(engine, *, limit: int = 10_000, require_published: bool = False) -> int:
    async with engine.begin() as conn:
        return await repository.prune_events(
            conn, retention_s=RETENTION_S, limit=limit, require_published=require_published
        )


async def test_the_worker_prunes_old_finished_events_and_keeps_the_rest(
    producer, mail_sink, workers, receiver, api, endpoints, register_endpoint, db, wait, settled, ids, order
):
    await register_endpoint(api, receiver, endpoints, ["order.paid"])
    # An endpoint that never answers (nothing listens there): its deliveries stay pending, retrying.
    dead = await api.post(
        "/webhooks/endpoints",
        json={"url": f"http://127.0.0.1:{free_port()}/hook", "event_types": ["order.expired"]},
    )
    assert dead.status_code == 201, dead.text
    endpoints.append(dead.json()["id"])
    long_ago = datetime.now(UTC) - OLD

    def paid(order_id: int) -> dict:
        return order(order_id, f"shopper-{order_id}@example.com", captured_cents=1_000)

    old_done = await producer.emit("order.paid", (a := ids()), paid(a), occurred_at=long_ago)
    old_pending = await producer.emit("order.expired", (b := ids()), order(b, None), occurred_at=long_ago)
    recent_done = await producer.emit("order.paid", (c := ids()), paid(c))

    with workers.start(mail_sink.url, prune_interval_s=0.1):
        await wait(lambda: settled(db, [recent_done], ["email", "webhooks", "sales"]), within_s=30)

        async def delivered_and_pruned() -> bool:
            return old_done in receiver.accepted and not await exists(db, old_done)

        await wait(delivered_and_pruned, within_s=30)
        # Pruned with it: every row that referred to it (the email record stays: it has no foreign key).
        assert await rows_of(db, old_done) == {"jobs": 0, "deliveries": 0, "attempts": 0}
        assert await db.fetchval(
            "SELECT count(*) FROM notifications.emails WHERE event_id = $1", uuid.UUID(old_done)
        )
        # The dead endpoint's delivery has been tried, and is pending: its event stays, whatever its age.
        await wait(lambda: _attempted(db, old_pending), within_s=30)
        assert await exists(db, old_pending)
        assert (await rows_of(db, old_pending))["deliveries"] == 1
    # A finished event younger than the retention stays, with its record of effects.
    assert await exists(db, recent_done)
    assert (await rows_of(db, recent_done))["jobs"] == 3  # email, webhooks, sales


async def _attempted(db, event_id: str) -> bool:
    return bool(
        await db.fetchval(
            "SELECT attempts > 0 AND status = 'pending' FROM notifications.webhook_deliveries"
            " WHERE event_id = $1",
            uuid.UUID(event_id),
        )
    )


async def _event(
    db, *, dispatched: bool = True, published: bool = False, age: timedelta = OLD
) -> tuple[str, int]:
    event_id = uuid.uuid4()
    pk = await db.fetchval(
        """
        INSERT INTO outbox.events (event_id, type, aggregate, aggregate_id, data, occurred_at, dispatched_at,
                                   published_at)
        VALUES ($1, 'order.expired', 'order', $2, '{}', now() - $3::interval,
                CASE WHEN $4 THEN now() END, CASE WHEN $5 THEN now() END)
        RETURNING id
        """,
        event_id,
        10**15 + next(_aggregate_ids),
        age,
        dispatched,
        published,
    )
    return str(event_id), pk


async def _job(db, event: tuple[str, int], consumer: str, state: str) -> None:
    await db.execute(
        """
        INSERT INTO notifications.jobs (consumer, event_pk, event_id, type, aggregate, aggregate_id, state)
        SELECT $2, id, event_id, type, aggregate, aggregate_id, $3 FROM outbox.events WHERE id = $1
        """,
        event[1],
        consumer,
        state,
    )


async def _delivery(db, event: tuple[str, int], endpoint_id: int, status: str) -> None:
    delivery = await db.fetchval(
        """
        INSERT INTO notifications.webhook_deliveries
               (endpoint_id, event_pk, event_id, type, aggregate, aggregate_id, status, attempts)
        SELECT $2, id, event_id, type, aggregate, aggregate_id, $3, 1 FROM outbox.events WHERE id = $1
        RETURNING id
        """,
        event[1],
        endpoint_id,
        status,
    )
    await db.execute(
        """
        INSERT INTO notifications.webhook_attempts (delivery_id, attempt, attempted_at, duration_ms, outcome)
        VALUES ($1, 1, now(), 1, $2)
        """,
        delivery,
        "retrying" if status == "pending" else status,
    )


async def test_only_finished_events_past_the_retention_are_pruned(engine, db, api, receiver, endpoints):
    endpoint = await api.post("/webhooks/endpoints", json={"url": receiver.url, "event_types": ["*"]})
    endpoint_id = endpoint.json()["id"]
    endpoints.append(endpoint_id)

    finished = await _event(db, published=True)
    await _job(db, finished, "email", "done")
    await _job(db, finished, "webhooks", "done")
    await _delivery(db, finished, endpoint_id, "succeeded")
    gave_up = await _event(db, published=True)  # failed for good is finished too
    await _job(db, gave_up, "webhooks", "failed")
    await _delivery(db, gave_up, endpoint_id, "failed")
    undispatched = await _event(db, dispatched=False)
    job_pending = await _event(db)
    await _job(db, job_pending, "email", "done")
    await _job(db, job_pending, "alerts", "pending")
    delivery_pending = await _event(db)
    await _job(db, delivery_pending, "webhooks", "done")
    await _delivery(db, delivery_pending, endpoint_id, "pending")
    young = await _event(db, age=timedelta(days=6))
    published = await _event(db, published=True)
    unpublished = await _event(db)

    # With the NATS relay on, an unpublished event is not finished: only the published one goes.
    await prune(engine, require_published=True)
    kept = {"undispatched", "job_pending", "delivery_pending", "young", "unpublished"}
    events = {
        "finished": finished,
        "gave_up": gave_up,
        "undispatched": undispatched,
        "job_pending": job_pending,
        "delivery_pending": delivery_pending,
        "young": young,
        "published": published,
        "unpublished": unpublished,
    }
    assert {name for name, (event_id, _) in events.items() if await exists(db, event_id)} == kept
    assert await rows_of(db, finished[0]) == {"jobs": 0, "deliveries": 0, "attempts": 0}
    assert await rows_of(db, gave_up[0]) == {"jobs": 0, "deliveries": 0, "attempts": 0}
    assert await rows_of(db, job_pending[0]) == {"jobs": 2, "deliveries": 0, "attempts": 0}
    assert await rows_of(db, delivery_pending[0]) == {"jobs": 1, "deliveries": 1, "attempts": 1}

    # Without the relay, publishing is nobody's business.
    await prune(engine, require_published=False)
    assert {name for name, (event_id, _) in events.items() if await exists(db, event_id)} == kept - {
        "unpublished"
    }

    # Once the last consumer finishes, the event goes on the next prune.
    await db.execute(
        "UPDATE notifications.jobs SET state = 'done' WHERE event_id = $1", uuid.UUID(job_pending[0])
    )
    await prune(engine)
    assert not await exists(db, job_pending[0])


async def test_pruning_goes_in_batches_of_the_limit(engine, db):
    events = [await _event(db) for _ in range(5)]
    assert await prune(engine, limit=2) == 2
    assert await prune(engine, limit=2) == 2
    await prune(engine)
    assert not [e for e, _ in events if await exists(db, e)]


async def test_a_producer_still_cannot_delete_events(producer):
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await producer.inventory.execute("DELETE FROM outbox.events WHERE false")
