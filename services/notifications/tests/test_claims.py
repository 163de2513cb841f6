"""The claim itself: a later event of an aggregate is never handed out while an earlier one is pending, and
the worker rides out its database connections being cut (as a PostgreSQL restart does)."""

import uuid

from sqlalchemy.ext.asyncio import create_async_engine

from notifications import repository
from notifications.clock import SystemClock
from notifications.worker import ROUTES


async def test_a_later_event_of_an_order_waits_for_the_earlier_one_whoever_claims(
    producer, service_database_urls, ids, order
):
    engine = create_async_engine(service_database_urls["notifications"])
    order_id, other = ids(), ids()
    first = await producer.emit("order.placed", order_id, order(order_id, None))
    second = await producer.emit("order.paid", order_id, order(order_id, None, captured_cents=1_000))
    unrelated = await producer.emit("order.placed", other, order(other, None))
    routes = [(c, t) for c, types in ROUTES.items() for t in types]
    try:
        async with engine.begin() as conn:
            while await repository.dispatch(conn, routes, 500):
                pass
        now = SystemClock().now()

        async def claim(worker: str) -> set[str]:
            async with engine.begin() as conn:
                jobs = await repository.claim_jobs(
                    conn, "webhooks", now=now, worker=worker, lease_s=60, limit=500
                )
            return {str(j["event_id"]) for j in jobs}

        a = await claim("a")
        assert first in a
        assert unrelated in a
        assert second not in a  # its order's earlier event is still pending: not in the same batch either
        assert not {first, second, unrelated} & await claim("b")  # leased, or waiting behind a leased one
        job_id = await _job_id(engine, first)
        async with engine.begin() as conn:
            assert await repository.complete_job(conn, job_id, state="done", effect="test")
        async with engine.begin() as conn:  # a second completion (a worker whose lease ran out) is refused
            assert not await repository.complete_job(conn, job_id, state="done", effect="again")
        assert second in await claim("b")
    finally:
        await engine.dispose()


async def _job_id(engine, event_id: str) -> int:
    from sqlalchemy import text

    async with engine.connect() as conn:
        result = await conn.execute(
            text("SELECT id FROM notifications.jobs WHERE consumer = 'webhooks' AND event_id = :e"),
            {"e": uuid.UUID(event_id)},
        )
        return int(result.scalar_one())


async def test_the_worker_recovers_when_its_database_connections_are_cut(
    producer, mail_sink, workers, db, wait, settled, ids, order
):
    email = f"cut-{uuid.uuid4().hex[:8]}@example.com"
    with workers.start(mail_sink.url):
        order_id = ids()
        before = await producer.emit("order.placed", order_id, order(order_id, email))
        await wait(lambda: settled(db, [before], ["email"]), within_s=30)
        # What a PostgreSQL restart does to the worker: every connection of its role dies, LISTEN included.
        cut = await db.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE usename = 'notifications_svc'"
        )
        assert cut >= 2  # a positive control: the pool's connection and the listener's were there to cut
        after = await producer.emit("order.paid", order_id, order(order_id, email, captured_cents=1_000))
        await wait(lambda: settled(db, [after], ["email", "webhooks"]), within_s=30)
    assert [m.kind for m in mail_sink.to({email})] == ["order_placed", "order_paid"]


async def test_an_event_that_does_not_fit_the_catalogue_fails_without_holding_back_its_order(
    producer, mail_sink, workers, db, wait, settled, ids, order
):
    order_id = ids()
    email = f"misfit-{uuid.uuid4().hex[:8]}@example.com"
    broken = await producer.emit("order.paid", order_id, {"order_id": order_id})  # no total, no items
    later = await producer.emit(
        "order.refunded",
        order_id,
        order(order_id, email, refund_id=1, amount_cents=100, refunded_cents=100, status="PAID"),
    )
    with workers.start(mail_sink.url):
        await wait(lambda: settled(db, [broken, later], ["email", "webhooks", "sales"]), within_s=30)
    rows = await db.fetch(
        "SELECT event_id::text, consumer, state, effect FROM notifications.jobs"
        " WHERE event_id = ANY($1::uuid[])",
        [broken, later],
    )
    assert {(r["consumer"], r["state"]) for r in rows if r["event_id"] == broken} == {
        ("email", "failed"),
        ("webhooks", "failed"),
        ("sales", "failed"),
    }
    assert all("invalid event" in r["effect"] for r in rows if r["event_id"] == broken)
    assert {r["state"] for r in rows if r["event_id"] == later} == {"done"}
    assert [m.kind for m in mail_sink.to({email})] == ["order_refunded"]


async def test_a_slow_mail_server_never_makes_two_workers_send_one_email(
    producer, mail_sink, workers, db, wait, settled, ids, order
):
    """Each worker stops working through its batch at half the lease and gives the rest back; without
    that, a lease running out under a slow SMTP server would let the other worker send the same email."""
    mail_sink.delay_s = 0.3
    emails, events = set(), []
    for _ in range(10):
        order_id, email = ids(), f"slow-{uuid.uuid4().hex[:8]}@example.com"
        emails.add(email)
        events.append(await producer.emit("order.placed", order_id, order(order_id, email)))
    with workers.start(mail_sink.url, lease_s=2), workers.start(mail_sink.url, lease_s=2):
        await wait(lambda: settled(db, events, ["email"]), within_s=60)
    received = mail_sink.to(emails)
    assert sorted(m.message_id for m in received) == sorted(f"<{e}@lockstock.local>" for e in events)
