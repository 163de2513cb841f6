"""Events of one aggregate take effect in order, whatever runs concurrently; a low-stock alert opens once."""

import asyncio
import uuid

import asyncpg

from servicekit.db import plain_url

LIFECYCLE = ["order.placed", "order.authorized", "order.paid", "order.refunded", "order.refunded"]


def _data(type_: str, order_id: int, email: str, order) -> dict:
    extra = {
        "order.authorized": {"authorized_cents": 1_000},
        "order.paid": {"captured_cents": 1_000},
        "order.refunded": {"refund_id": 1, "amount_cents": 100, "refunded_cents": 100, "status": "PAID"},
    }.get(type_, {})
    return order(order_id, email, [(1, 1, 1_000)], **extra)


async def test_events_of_one_order_take_effect_in_order_with_two_workers(
    producer, mail_sink, workers, receiver, api, endpoints, register_endpoint, db, wait, settled, ids, order
):
    await register_endpoint(api, receiver, endpoints, ["*"])
    receiver.script = ["fail", "ok", "fail"]  # retries must not reorder an order's events either
    orders = {ids(): f"order-{uuid.uuid4().hex[:8]}@example.com" for _ in range(8)}
    emitted: dict[int, list[str]] = {order_id: [] for order_id in orders}
    with workers.start(mail_sink.url), workers.start(mail_sink.url):
        for type_ in LIFECYCLE:  # interleaved across orders, as concurrent shoppers would
            for order_id, email in orders.items():
                emitted[order_id].append(
                    await producer.emit(type_, order_id, _data(type_, order_id, email, order))
                )
        every = [e for events in emitted.values() for e in events]
        await wait(lambda: settled(db, every, ["email", "webhooks"]), within_s=60)
        await wait(lambda: _all_delivered(receiver, every), within_s=60)

    for order_id, events in emitted.items():
        # Webhooks arrive in the order the events were committed...
        assert [e for e in receiver.order if e in events] == events
        # ...and so do emails (placed, paid, refunded, refunded; authorized sends none)...
        kinds = [m.kind for m in mail_sink.to({orders[order_id]})]
        assert kinds == ["order_placed", "order_paid", "order_refunded", "order_refunded"]
        # ...and each consumer's effects are recorded in that order.
        for consumer in ("email", "webhooks", "sales"):
            done = await db.fetch(
                "SELECT event_id::text FROM notifications.jobs"
                " WHERE consumer = $1 AND event_id = ANY($2::uuid[]) ORDER BY done_at",
                consumer,
                events,
            )
            assert [r["event_id"] for r in done] == [e for e in events if e in {r["event_id"] for r in done}]


async def _all_delivered(receiver, events: list[str]) -> bool:
    return set(events) <= set(receiver.accepted)


async def test_a_low_stock_alert_opens_exactly_once_when_50_concurrent_orders_cross_the_threshold(
    producer, service_database_urls, mail_sink, workers, api, db, wait, settled, ids
):
    product_id, threshold = ids(), 5
    owner = f"owner-{uuid.uuid4().hex[:8]}@example.com"
    pool = await asyncpg.create_pool(plain_url(service_database_urls["inventory"]), min_size=50, max_size=50)
    try:
        with (
            workers.start(mail_sink.url, admin_email=owner),
            workers.start(mail_sink.url, admin_email=owner),
        ):

            async def order_takes_one(stock_left: int) -> str:
                async with pool.acquire() as conn:
                    data = {
                        "product_id": product_id,
                        "name": "Mug",
                        "stock_qty": stock_left % (threshold + 1),
                        "threshold": threshold,
                    }
                    return await producer.emit("stock.low", product_id, data, conn=conn)

            events = await asyncio.gather(*(order_takes_one(s) for s in range(50)))
            await wait(lambda: settled(db, list(events), ["alerts"]), within_s=60)
            effects = await db.fetch(
                "SELECT effect, count(*) FROM notifications.jobs WHERE consumer = 'alerts'"
                " AND event_id = ANY($1::uuid[]) GROUP BY effect",
                list(events),
            )
            assert {r["effect"]: r["count"] for r in effects} == {"alert opened": 1, "alert already open": 49}

            restocked = await producer.emit(
                "stock.restored",
                product_id,
                {"product_id": product_id, "name": "Mug", "stock_qty": 40, "threshold": 5},
            )
            await wait(lambda: settled(db, [restocked], ["alerts"]), within_s=30)
            low_again = await producer.emit(
                "stock.low",
                product_id,
                {"product_id": product_id, "name": "Mug", "stock_qty": 2, "threshold": 5},
            )
            await wait(lambda: settled(db, [low_again], ["alerts"]), within_s=30)
            await wait(lambda: settled(db, [*events, low_again], ["email"]), within_s=30)
    finally:
        await pool.close()

    alerts = [a for a in (await api.get("/alerts")).json() if a["product_id"] == product_id]
    # Which of the 50 racing events committed first is chance; that exactly one opened the alert is not.
    assert [(a["open"], a["stock_at_close"]) for a in alerts] == [(True, None), (False, 40)]
    assert alerts[0]["stock_at_open"] == 2
    assert alerts[1]["stock_at_open"] <= threshold
    open_now = [
        a
        for a in (await api.get("/alerts", params={"state": "open"})).json()
        if a["product_id"] == product_id
    ]
    assert len(open_now) == 1
    # The owner hears of each opening once: two alerts, two emails, whatever the 50 racing events did.
    notices = mail_sink.to({owner})
    assert [m.kind for m in notices] == ["low_stock", "low_stock"]
    assert notices[1].message_id == f"<{low_again}@lockstock.local>"
