"""End to end from the real producers: the orders and payments apps of the root conftest write the events
(in the statements that move the order), a worker started as in the other tests relays and consumes them,
and the shopper's emails arrive in the SMTP sink, once each, in the order the order lived them."""

import uuid

import httpx
import pytest

GOOD_CARD = "4242 4242 4242 4242"
CONSUMERS = ["email", "webhooks", "alerts", "sales"]


@pytest.fixture
async def shop(orders_url, as_gateway):
    async with httpx.AsyncClient(base_url=orders_url, headers=as_gateway, timeout=30) as client:
        yield client


async def place_and_pay(shop: httpx.AsyncClient, product: int, email: str) -> int:
    placed = await shop.post(
        "/orders",
        json={"items": [{"productId": product, "qty": 2}], "customer": {"email": email, "name": "Ada"}},
    )
    assert placed.status_code == 201, placed.text
    order_id = int(placed.json()["orderId"])
    authorized = await shop.post(f"/orders/{order_id}/authorize", json={"card_number": GOOD_CARD})
    assert authorized.status_code == 200, authorized.text
    captured = await shop.post(f"/orders/{order_id}/capture")
    assert captured.status_code == 200, captured.text
    return order_id


async def events_of(db, order_id: int) -> list[tuple[int, str, str]]:
    rows = await db.fetch(
        "SELECT id, type, event_id FROM outbox.events"
        " WHERE aggregate = 'order' AND aggregate_id = $1 ORDER BY id",
        order_id,
    )
    return [(row["id"], row["type"], str(row["event_id"])) for row in rows]


async def processed_in_order(db, order_id: int) -> None:
    """Each consumer finished the order's events in outbox order (the worker's per-order ordering)."""
    for consumer in CONSUMERS:
        pks = await db.fetch(
            """
            SELECT event_pk FROM notifications.jobs
             WHERE consumer = $1 AND aggregate = 'order' AND aggregate_id = $2 AND state = 'done'
             ORDER BY done_at, id
            """,
            consumer,
            order_id,
        )
        assert [r["event_pk"] for r in pks] == sorted(r["event_pk"] for r in pks), consumer


async def test_placing_paying_an_order_mails_the_confirmation_and_the_receipt_once(
    shop, db, make_product, mail_sink, workers, wait, settled
):
    email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    product = await make_product(stock=5, price_cents=1_250, name="Outbox mug")

    with workers.start(mail_sink.url):
        order_id = await place_and_pay(shop, product, email)
        events = await events_of(db, order_id)
        assert [t for _, t, _ in events] == ["order.placed", "order.authorized", "order.paid"]
        event_ids = [e for _, _, e in events]
        await wait(lambda: settled(db, event_ids, CONSUMERS), within_s=30)

    received = mail_sink.to({email})
    assert [m.kind for m in received] == ["order_placed", "order_paid"]
    assert [m.message_id for m in received] == [
        f"<{events[0][2]}@lockstock.local>",
        f"<{events[2][2]}@lockstock.local>",
    ]
    assert f"#{order_id}" in received[1].subject
    body = await db.fetchval(
        "SELECT text_body FROM notifications.emails WHERE event_id = $1", uuid.UUID(events[2][2])
    )
    assert "$25.00" in body
    assert "Outbox mug" in body
    await processed_in_order(db, order_id)
    failed = await db.fetchval(
        "SELECT count(*) FROM notifications.jobs WHERE event_id = ANY($1::uuid[]) AND state <> 'done'",
        event_ids,
    )
    assert failed == 0


async def test_cancelling_a_paid_order_mails_the_cancellation_and_the_refund(
    shop, db, make_product, mail_sink, workers, wait, settled
):
    email = f"bob-{uuid.uuid4().hex[:8]}@example.com"
    product = await make_product(stock=5, price_cents=800, name="Pen")

    with workers.start(mail_sink.url):
        order_id = await place_and_pay(shop, product, email)
        cancelled = await shop.post(f"/orders/{order_id}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        again = await shop.post(f"/orders/{order_id}/cancel")
        assert again.status_code in (200, 409)  # nothing moves twice, so nothing is sent twice
        events = await events_of(db, order_id)
        assert [t for _, t, _ in events] == [
            "order.placed",
            "order.authorized",
            "order.paid",
            "order.cancelled",
            "order.refunded",
        ]
        await wait(lambda: settled(db, [e for _, _, e in events], CONSUMERS), within_s=30)

    received = mail_sink.to({email})
    assert [m.kind for m in received] == ["order_placed", "order_paid", "order_cancelled", "order_refunded"]
    assert len({m.message_id for m in received}) == 4
    await processed_in_order(db, order_id)
