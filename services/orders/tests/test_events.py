"""Orders writes its events into outbox.events in the statement that makes the change (issue 14,
docs/events.md): exactly the catalogue's data, only from the statement that really moved the order, so a
refusal, a lost race or a repeated request writes nothing. Every test runs batched and single."""

import asyncio
import json
from datetime import datetime

import pytest

from notifications.events import CATALOGUE

CUSTOMER = {"email": "ada@example.com", "name": "Ada Lovelace"}


@pytest.fixture(scope="module")
def orders_url(orders_url_each_placement: str) -> str:
    return orders_url_each_placement


async def events_of(db, order_id: int) -> list[tuple[str, dict]]:
    rows = await db.fetch(
        "SELECT type, data::text AS data FROM outbox.events WHERE aggregate = 'order' AND aggregate_id = $1"
        " ORDER BY id",
        order_id,
    )
    for row in rows:
        CATALOGUE[row["type"]].model_validate_json(row["data"])  # what the worker will accept
    return [(row["type"], json.loads(row["data"])) for row in rows]


async def test_a_placed_order_writes_order_placed_with_its_lines_and_customer(orders, db, make_product):
    mug = await make_product(stock=5, price_cents=1_200, name="Mug")
    pen = await make_product(stock=9, price_cents=250, name="Pen")
    response = await orders.client.post(
        "/orders",
        json={"items": [{"productId": pen, "qty": 3}, {"productId": mug, "qty": 2}], "customer": CUSTOMER},
    )
    assert response.status_code == 201, response.text
    placed = response.json()

    [(type_, data)] = await events_of(db, placed["orderId"])

    assert type_ == "order.placed"
    assert datetime.fromisoformat(data.pop("expires_at")) == datetime.fromisoformat(placed["expires_at"])
    assert data == {
        "order_id": placed["orderId"],
        "total_cents": 2 * 1_200 + 3 * 250,
        "items": [
            {"product_id": mug, "qty": 2, "price_cents": 1_200, "name": "Mug"},
            {"product_id": pen, "qty": 3, "price_cents": 250, "name": "Pen"},
        ],
        "customer": {**CUSTOMER, "address": None},
    }


async def test_an_order_refused_for_stock_writes_no_event(orders, db, make_product):
    plenty = await make_product(stock=10)
    scarce = await make_product(stock=1)
    before = await db.fetchval("SELECT count(*) FROM outbox.events")

    response = await orders.client.post(
        "/orders", json={"items": [{"productId": plenty, "qty": 4}, {"productId": scarce, "qty": 2}]}
    )

    assert response.status_code == 409, response.text
    assert await db.fetchval("SELECT count(*) FROM outbox.events") == before


async def test_concurrent_orders_each_write_one_event_and_the_refused_none(orders, db, make_product):
    product = await make_product(stock=7)
    responses = await asyncio.gather(
        *(
            orders.client.post("/orders", json={"items": [{"productId": product, "qty": 1}]})
            for _ in range(20)
        )
    )

    placed = [r.json()["orderId"] for r in responses if r.status_code == 201]
    assert len(placed) == 7
    assert sorted(r.status_code for r in responses) == [201] * 7 + [409] * 13
    rows = await db.fetch(
        "SELECT aggregate_id FROM outbox.events WHERE type = 'order.placed'"
        " AND (data -> 'items' -> 0 ->> 'product_id')::bigint = $1",
        product,
    )
    assert sorted(row["aggregate_id"] for row in rows) == sorted(placed)


async def test_the_money_steps_write_their_events_in_order(orders, db, make_product, events_follow_orders):
    product = await make_product(stock=5, price_cents=1_000, name="Lamp")
    order_id = (await orders.place(product, 2, customer=CUSTOMER))["orderId"]

    declined = await orders.authorize(order_id, card="4000 0000 0000 0002")
    assert declined.json()["status"] == "PAYMENT_FAILED", declined.text
    assert (await orders.authorize(order_id)).status_code == 200
    assert (await orders.authorize(order_id)).status_code == 200  # a repeat moves nothing
    assert (await orders.capture(order_id)).status_code == 200
    assert (await orders.capture(order_id)).status_code == 200
    assert (await orders.refund(order_id, 500, key=f"r1-{order_id}", reason="chipped")).status_code == 201
    assert (await orders.refund(order_id, 500, key=f"r1-{order_id}", reason="chipped")).status_code == 201
    assert (await orders.refund(order_id, 1_500, key=f"r2-{order_id}")).status_code == 201

    events = await events_of(db, order_id)
    order = await orders.get(order_id)
    assert [t for t, _ in events] == [
        "order.placed",
        "payment.declined",
        "order.authorized",
        "order.paid",
        "order.refunded",
        "order.refunded",
    ]
    declined_data, authorized, paid, first, second = (d for _, d in events[1:])
    declined_payment = await db.fetchval(
        "SELECT id FROM payments.payments WHERE order_id = $1 AND status = 'declined'", order_id
    )
    assert declined_data == {
        "order_id": order_id,
        "payment_id": declined_payment,
        "failure_code": "card_declined",
        "attempt": 1,
    }
    line = {"product_id": product, "qty": 2, "price_cents": 1_000, "name": "Lamp"}
    common = {
        "order_id": order_id,
        "total_cents": 2_000,
        "items": [line],
        "customer": {**CUSTOMER, "address": None},
    }
    assert authorized == {**common, "authorized_cents": 2_000, "payment_id": order["payment_id"]}
    assert paid == {**common, "captured_cents": 2_000, "payment_id": order["payment_id"]}
    refunds = order["refunds"]
    assert first == {
        **common,
        "refund_id": refunds[0]["id"],
        "amount_cents": 500,
        "refunded_cents": 500,
        "reason": "chipped",
        "status": "PAID",
    }
    assert second == {
        **common,
        "refund_id": refunds[1]["id"],
        "amount_cents": 1_500,
        "refunded_cents": 2_000,
        "reason": None,
        "status": "REFUNDED",
    }
    await events_follow_orders(db, [order_id])


async def test_a_double_cancel_writes_one_cancellation(orders, db, make_product, events_follow_orders):
    product = await make_product(stock=50)
    order_ids = [(await orders.place(product))["orderId"] for _ in range(10)]

    results = await asyncio.gather(*(orders.cancel(o) for o in order_ids for _ in range(3)))

    assert {r.status_code for r in results} <= {200, 409}
    for order_id in order_ids:
        events = await events_of(db, order_id)
        assert [t for t, _ in events] == ["order.placed", "order.cancelled"]
        assert events[1][1]["previous_status"] == "PENDING"
        assert events[1][1]["refund_cents"] == 0
    await events_follow_orders(db, order_ids)


async def test_cancelling_a_paid_order_says_what_it_gives_back(
    orders, db, make_product, reconciler, payments_url, events_follow_orders
):
    product = await make_product(stock=5, price_cents=900)
    order_id = (await orders.place(product, customer=CUSTOMER))["orderId"]
    assert (await orders.authorize(order_id)).status_code == 200
    assert (await orders.capture(order_id)).status_code == 200

    assert (await orders.cancel(order_id)).status_code == 200
    await reconciler.reconcile(payments_url)

    events = await events_of(db, order_id)
    assert [t for t, _ in events][:4] == ["order.placed", "order.authorized", "order.paid", "order.cancelled"]
    assert events[3][1]["previous_status"] == "PAID"
    assert events[3][1]["refund_cents"] == 900
    await events_follow_orders(db, [order_id])


async def test_racing_sweepers_expire_each_order_once(
    orders, db, make_product, reconciler, events_follow_orders
):
    product = await make_product(stock=30)
    order_ids = [(await orders.place(product))["orderId"] for _ in range(30)]
    await db.execute(
        "UPDATE orders.orders SET expires_at = now() - interval '1 second' WHERE id = ANY($1)", order_ids
    )

    swept = await asyncio.gather(*(reconciler.sweep() for _ in range(4)))

    assert sorted(i for ids in swept for i in ids if i in order_ids) == sorted(order_ids)
    expired = await db.fetch(
        "SELECT aggregate_id, data::text AS data FROM outbox.events WHERE type = 'order.expired'"
        " AND aggregate_id = ANY($1)",
        order_ids,
    )
    assert sorted(row["aggregate_id"] for row in expired) == sorted(order_ids)
    assert all(json.loads(row["data"])["items"][0]["product_id"] == product for row in expired)
    await events_follow_orders(db, order_ids)
