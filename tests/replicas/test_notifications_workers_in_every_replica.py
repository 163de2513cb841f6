"""The notifications worker in every replica at once.

Each notifications process runs the outbox worker (NOTIFICATIONS_WORKER_ENABLED, on by default), so with
replicas (two in deploy/k8s/base/notifications.yaml, more during a rollout, N under `task up`) several
consume the same outbox together. They claim their jobs with FOR UPDATE SKIP LOCKED under a lease, and a
job's effect commits with its flip to done, so here two real worker processes (uvicorn serving
notifications.app:create_app, as the image and `task up` run it) share one set of events and every effect
happens once: each email reaches the SMTP sink once, each webhook is delivered once (one attempt, signed),
and each paid order counts once in the daily sales. Both workers did part of the work, or this would prove
nothing about two.

The events are written as the producers write them (services/notifications/tests/conftest.py's Producer:
orders_svc inserting into outbox.events), and the sink, the receiver and the workers are that conftest's.
"""

import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from devstack.testing import load_module, wait_until

# services/notifications/tests/conftest.py: its producer, SMTP sink, webhook receiver and workers.
NOTIFICATIONS_CONFTEST = (
    Path(__file__).resolve().parents[2] / "services" / "notifications" / "tests" / "conftest.py"
)
helpers = load_module(NOTIFICATIONS_CONFTEST, "replicas_notifications_helpers")

# That conftest's fixtures, collected here as this module's.
producer = helpers.producer
mail_sink = helpers.mail_sink
receiver = helpers.receiver
api = helpers.api
endpoints = helpers.endpoints
workers = helpers.workers

ORDERS = 24
WORKERS = 2


async def test_two_workers_at_once_send_each_email_deliver_each_webhook_and_count_each_sale_once(
    producer: Any,
    mail_sink: Any,
    receiver: Any,
    api: httpx.AsyncClient,
    endpoints: list[int],
    workers: Any,
    db: asyncpg.Connection,
) -> None:
    endpoint_id = await helpers.register(api, receiver, endpoints, ["order.placed", "order.paid"])
    mail_sink.delay_s = 0.02  # a mail server that takes a moment, so the two workers' batches overlap
    for _ in range(WORKERS):
        workers.spawn(mail_sink.url)

    run = uuid.uuid4().hex[:8]
    orders: dict[int, dict[str, Any]] = {}
    events: list[str] = []
    for n in range(ORDERS):
        order_id = helpers.new_id()
        email = f"replica-{run}-{n}@example.com"
        data = helpers.order_data(order_id, email, [(helpers.new_id(), 1 + n % 3, 700 + n)])
        events.append(await producer.emit("order.placed", order_id, data))
        events.append(
            await producer.emit("order.paid", order_id, {**data, "captured_cents": data["total_cents"]})
        )
        orders[order_id] = {"email": email, "item": data["items"][0]}

    async def settled() -> bool:
        done: bool = await helpers.jobs_done(db, events, ["email", "webhooks", "sales"])
        return done

    await wait_until(settled, within_s=90)

    async def delivered() -> bool:
        pending = await db.fetchval(
            "SELECT count(*) FROM notifications.webhook_deliveries"
            " WHERE endpoint_id = $1 AND event_id = ANY($2::uuid[]) AND status <> 'succeeded'",
            endpoint_id,
            events,
        )
        return bool(pending == 0)

    await wait_until(delivered, within_s=60)

    jobs = await db.fetch(
        "SELECT consumer, state, locked_by FROM notifications.jobs WHERE event_id = ANY($1::uuid[])", events
    )
    assert {(job["consumer"], job["state"]) for job in jobs} == {
        ("email", "done"),
        ("webhooks", "done"),
        ("sales", "done"),
    }
    # The two replicas shared the work (each job names the worker that took it last).
    assert len({job["locked_by"] for job in jobs}) == WORKERS, {job["locked_by"] for job in jobs}

    # Each email once: two per order (placed, paid), each event's Message-ID exactly once in the sink.
    received = mail_sink.to({order["email"] for order in orders.values()})
    assert sorted(m.message_id for m in received) == sorted(f"<{e}@lockstock.local>" for e in events)
    for order in orders.values():
        assert [m.kind for m in mail_sink.to({order["email"]})] == ["order_placed", "order_paid"]
    assert await db.fetchval(
        "SELECT count(*) FROM notifications.emails WHERE event_id = ANY($1::uuid[])", events
    ) == len(events)

    # Each webhook once: one verified request per event (the webhook-id is the event id), one attempt each.
    ours = [request for request in receiver.requests if request["id"] in set(events)]
    assert sorted(request["id"] for request in ours) == sorted(events)
    assert all(request["verified"] for request in ours)
    attempts = await db.fetch(
        "SELECT d.status, d.attempts, count(a.id) AS rows"
        "  FROM notifications.webhook_deliveries d"
        "  LEFT JOIN notifications.webhook_attempts a ON a.delivery_id = d.id"
        " WHERE d.endpoint_id = $1 AND d.event_id = ANY($2::uuid[]) GROUP BY d.id",
        endpoint_id,
        events,
    )
    assert len(attempts) == len(events)
    assert {(row["status"], row["attempts"], row["rows"]) for row in attempts} == {("succeeded", 1, 1)}

    # Each paid order counted once in the daily sales (each order's product is its own).
    sales = await db.fetch(
        "SELECT product_id, sum(units) AS units, sum(revenue_cents) AS revenue"
        "  FROM notifications.sales_daily WHERE product_id = ANY($1) GROUP BY product_id",
        [order["item"]["product_id"] for order in orders.values()],
    )
    assert {row["product_id"]: (row["units"], row["revenue"]) for row in sales} == {
        order["item"]["product_id"]: (
            order["item"]["qty"],
            order["item"]["qty"] * order["item"]["price_cents"],
        )
        for order in orders.values()
    }
