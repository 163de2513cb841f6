"""The order's money lifecycle against the live payments service: authorize, capture, cancel, refund."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

GOOD_CARD = "4242 4242 4242 4242"
DECLINED_CARD = "4000 0000 0000 0002"
NO_FUNDS_CARD = "4000 0000 0000 9995"


async def payments_of(db, order_id: int) -> list:
    return await db.fetch("SELECT * FROM payments.payments WHERE order_id = $1 ORDER BY id", order_id)


async def stock_of(db, product_id: int) -> int:
    return await db.fetchval("SELECT stock_qty FROM inventory.products WHERE id = $1", product_id)


@pytest.fixture
def new_order(orders, make_product):
    """A PENDING order of its own for ``qty`` units of a new product; returns (order id, product id)."""

    async def make(price_cents: int = 1_250, qty: int = 2, stock: int = 10) -> tuple[int, int]:
        product = await make_product(stock=stock, price_cents=price_cents)
        placed = await orders.place(product, qty)
        return placed["orderId"], product

    return make


async def test_an_order_reserves_its_stock_until_a_deadline_and_keeps_the_customer(orders, make_product):
    product = await make_product(stock=3, price_cents=900)
    customer = {
        "email": "ada@example.com",
        "name": "Ada Lovelace",
        "address": {
            "line1": "12 St James's Sq",
            "line2": None,
            "city": "London",
            "postal_code": "SW1Y 4JH",
            "country": "gb",
        },
    }

    placed = await orders.place(product, 2, customer=customer)

    expires_at = datetime.fromisoformat(placed["expires_at"])
    assert timedelta(seconds=890) < expires_at - datetime.now(UTC) <= timedelta(seconds=900)
    order = await orders.get(placed["orderId"])
    assert order["customer"] == {**customer, "address": {**customer["address"], "country": "GB"}}
    assert (order["status"], order["expires_at"], order["payment_id"], order["refunds"]) == (
        "PENDING",
        placed["expires_at"],
        None,
        [],
    )
    assert (order["authorized_cents"], order["captured_cents"], order["refunded_cents"]) == (0, 0, 0)


@pytest.mark.parametrize(
    "customer",
    [
        {"email": "not-an-email"},
        {"email": "a@b.co", "name": "x" * 201},
        {"email": "a@b.co", "address": {"line1": "1", "city": "c", "postal_code": "p", "country": "GBR"}},
        {"email": "a@b.co", "address": {"line1": "1", "city": "c"}},
        {"name": "no email"},
    ],
)
async def test_a_bad_customer_is_refused_and_takes_no_stock(orders, db, make_product, customer):
    product = await make_product(stock=3)

    response = await orders.client.post(
        "/orders", json={"items": [{"productId": product, "qty": 1}], "customer": customer}
    )

    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert await stock_of(db, product) == 3


async def test_authorize_holds_the_order_total_on_the_card(orders, db, new_order):
    order_id, _ = await new_order(price_cents=1_250, qty=2)

    response = await orders.authorize(order_id)

    assert response.status_code == 200, response.text
    order = response.json()
    assert (order["status"], order["authorized_cents"], order["card_last4"], order["expires_at"]) == (
        "AUTHORIZED",
        2_500,
        "4242",
        None,
    )
    [payment] = await payments_of(db, order_id)
    assert (payment["id"], payment["amount_cents"], payment["status"]) == (
        order["payment_id"],
        2_500,
        "authorized",
    )
    assert await orders.get(order_id) == order
    again = await orders.authorize(order_id, "5555 5555 5555 4444")
    assert (again.status_code, again.json()) == (200, order)
    assert len(await payments_of(db, order_id)) == 1


@pytest.mark.parametrize(
    ("card", "code"), [(DECLINED_CARD, "card_declined"), (NO_FUNDS_CARD, "insufficient_funds")]
)
async def test_a_declined_card_fails_the_payment_and_another_card_can_follow(
    orders, db, new_order, card, code
):
    order_id, _ = await new_order()

    declined = (await orders.authorize(order_id, card)).json()

    assert (declined["status"], declined["payment_failure_code"], declined["payment_attempts"]) == (
        "PAYMENT_FAILED",
        code,
        1,
    )
    assert declined["expires_at"] is not None  # the reservation stands while the shopper tries another card
    authorized = (await orders.authorize(order_id, GOOD_CARD)).json()
    assert (authorized["status"], authorized["payment_failure_code"], authorized["payment_attempts"]) == (
        "AUTHORIZED",
        None,
        2,
    )
    assert [p["status"] for p in await payments_of(db, order_id)] == ["declined", "authorized"]
    assert [
        k["key"]
        for k in await db.fetch(
            "SELECT key FROM payments.idempotency_keys WHERE key LIKE $1 ORDER BY key", f"order-{order_id}-%"
        )
    ] == [f"order-{order_id}-authorize-1", f"order-{order_id}-authorize-2"]


@pytest.mark.parametrize("card", ["4242 4242 4242 4241", "1234", "4242-4242-4242-4242-4242-4242"])
async def test_an_invalid_card_number_is_422_and_changes_nothing(orders, db, new_order, card):
    order_id, _ = await new_order()
    before = await orders.get(order_id)

    response = await orders.authorize(order_id, card)

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_card"
    assert card not in response.text
    after = await orders.get(order_id)
    assert after == before
    assert await payments_of(db, order_id) == []


async def test_authorize_after_the_deadline_is_refused_even_before_any_sweep(orders, db, new_order):
    order_id, _ = await new_order()
    await db.execute(
        "UPDATE orders.orders SET expires_at = now() - interval '1 second' WHERE id = $1", order_id
    )

    response = await orders.authorize(order_id)

    assert response.status_code == 409
    assert response.json()["code"] == "order_expired"
    assert await payments_of(db, order_id) == []


async def test_a_cancelled_order_cannot_be_authorized(orders, db, new_order):
    order_id, _ = await new_order()
    assert (await orders.cancel(order_id)).status_code == 200

    response = await orders.authorize(order_id)

    assert (response.status_code, response.json()["code"]) == (409, "order_not_authorizable")
    assert await payments_of(db, order_id) == []


async def test_capture_takes_the_authorization_in_full(orders, db, new_order, invariants):
    order_id, product = await new_order(price_cents=700, qty=3)
    assert (await orders.authorize(order_id)).status_code == 200

    response = await orders.capture(order_id)

    assert response.status_code == 200, response.text
    paid = response.json()
    assert (paid["status"], paid["captured_cents"], paid["authorized_cents"]) == ("PAID", 2_100, 2_100)
    [payment] = await payments_of(db, order_id)
    assert (payment["status"], payment["captured_cents"]) == ("captured", 2_100)
    again = await orders.capture(order_id)
    assert (again.status_code, again.json()) == (200, paid)
    await invariants(db, {product: 10})


async def test_capture_refuses_an_order_without_an_authorization(orders, db, new_order):
    order_id, _ = await new_order()

    pending = await orders.capture(order_id)
    assert (pending.status_code, pending.json()["code"]) == (409, "order_not_authorized")
    await orders.authorize(order_id, DECLINED_CARD)
    failed = await orders.capture(order_id)
    assert (failed.status_code, failed.json()["code"]) == (409, "order_not_authorized")
    await orders.cancel(order_id)
    cancelled = await orders.capture(order_id)
    assert (cancelled.status_code, cancelled.json()["code"]) == (409, "order_not_capturable")
    assert [p["status"] for p in await payments_of(db, order_id)] == ["declined"]


async def test_a_payment_posted_straight_to_payments_never_pays_the_order(
    orders, db, new_order, payments_url, as_orders, reconciler, invariants
):
    """The bug that started this: a 1-cent charge under another key made a $25.00 order PAID. (Only orders'
    own credential can post to payments now; the stray charge stands for a bug in orders itself.)"""

    order_id, product = await new_order(price_cents=2_500, qty=1)
    async with httpx.AsyncClient(base_url=payments_url, headers=as_orders) as client:
        stray = await client.post(
            "/payments",
            json={"order_id": order_id, "amount_cents": 1, "card_number": GOOD_CARD},
            headers={"Idempotency-Key": f"not-orders-{uuid.uuid4()}"},
        )
    assert stray.status_code == 201, stray.text

    capture = await orders.capture(order_id)
    assert (capture.status_code, capture.json()["code"]) == (409, "order_not_authorized")
    await db.execute("UPDATE orders.orders SET reconcile_at = now() WHERE id = $1", order_id)
    await reconciler.reconcile(payments_url)

    order = await orders.get(order_id)
    assert (order["status"], order["payment_id"], order["authorized_cents"]) == ("PENDING", None, 0)
    [payment] = await payments_of(db, order_id)
    assert payment["status"] == "voided"
    paid = await orders.authorize(order_id)
    assert paid.json()["status"] == "AUTHORIZED"
    assert (await orders.capture(order_id)).json()["status"] == "PAID"
    await invariants(db, {product: 10})


async def test_cancelling_an_authorized_order_voids_it_and_restocks(orders, db, new_order, invariants):
    order_id, product = await new_order(qty=4)
    await orders.authorize(order_id)
    assert await stock_of(db, product) == 6

    response = await orders.cancel(order_id)

    assert response.status_code == 200
    assert response.json()["status"] == "CANCELLED"
    assert [p["status"] for p in await payments_of(db, order_id)] == ["voided"]
    assert await stock_of(db, product) == 10
    await invariants(db, {product: 10})


async def test_cancelling_a_paid_order_refunds_it_in_full(orders, db, new_order, invariants):
    order_id, product = await new_order(price_cents=1_000, qty=1)
    await orders.authorize(order_id)
    await orders.capture(order_id)
    await orders.refund(order_id, 300, f"r-{uuid.uuid4()}", "scratched")

    response = await orders.cancel(order_id)

    assert response.status_code == 200
    order = response.json()
    assert (order["status"], order["captured_cents"], order["refunded_cents"]) == ("CANCELLED", 1_000, 1_000)
    [payment] = await payments_of(db, order_id)
    assert (payment["status"], payment["refunded_cents"]) == ("refunded", 1_000)
    assert [(r["amount_cents"], r["reason"]) for r in order["refunds"]] == [(300, "scratched"), (700, None)]
    assert await stock_of(db, product) == 10
    again = await orders.cancel(order_id)
    assert (again.status_code, again.json()) == (200, order)
    await invariants(db, {product: 10})


async def test_partial_refunds_then_the_remainder_make_the_order_refunded(orders, db, new_order, invariants):
    order_id, product = await new_order(price_cents=1_000, qty=2)
    await orders.authorize(order_id)
    await orders.capture(order_id)
    key = f"refund-{uuid.uuid4()}"

    first = await orders.refund(order_id, 500, key, "damaged")
    replay = await orders.refund(order_id, 500, key, "damaged")
    reused = await orders.refund(order_id, 600, key, "damaged")
    too_much = await orders.refund(order_id, 1_501, f"refund-{uuid.uuid4()}")
    rest = await orders.refund(order_id, 1_500, f"refund-{uuid.uuid4()}")

    assert first.status_code == 201, first.text
    assert (first.json()["status"], first.json()["refunded_cents"]) == ("PAID", 500)
    assert first.json()["refunds"][0]["reason"] == "damaged"
    assert (replay.status_code, replay.content, replay.headers["Idempotent-Replayed"]) == (
        201,
        first.content,
        "true",
    )
    assert (reused.status_code, reused.json()["code"]) == (422, "idempotency_key_reused")
    assert (too_much.status_code, too_much.json()["code"]) == (409, "refund_exceeds_captured")
    assert too_much.json()["refundable_cents"] == 1_500
    assert rest.status_code == 201
    order = rest.json()
    assert (order["status"], order["refunded_cents"], len(order["refunds"])) == ("REFUNDED", 2_000, 2)
    assert await stock_of(db, product) == 8  # a refund is not a restock
    after = await orders.refund(order_id, 1, f"refund-{uuid.uuid4()}")
    assert (after.status_code, after.json()["code"]) == (409, "order_not_refundable")
    await invariants(db, {product: 10})


async def test_refunds_need_a_key_and_a_paid_order(orders, new_order):
    order_id, _ = await new_order()

    missing = await orders.client.post(f"/orders/{order_id}/refunds", json={"amount_cents": 1})
    unpaid = await orders.refund(order_id, 1, f"refund-{uuid.uuid4()}")
    zero = await orders.refund(order_id, 0, f"refund-{uuid.uuid4()}")
    long_reason = await orders.refund(order_id, 1, f"refund-{uuid.uuid4()}", "x" * 501)

    assert (missing.status_code, missing.json()["code"]) == (400, "idempotency_key_missing")
    assert (unpaid.status_code, unpaid.json()["code"]) == (409, "order_not_refundable")
    assert zero.status_code == long_reason.status_code == 422


async def test_ten_concurrent_refunds_of_thirty_percent_exactly_three_succeed(
    orders, db, new_order, invariants
):
    order_id, product = await new_order(price_cents=1_000, qty=1)
    await orders.authorize(order_id)
    await orders.capture(order_id)

    responses = await asyncio.gather(
        *(orders.refund(order_id, 300, f"refund-{uuid.uuid4()}") for _ in range(10))
    )

    assert sorted(r.status_code for r in responses) == [201] * 3 + [409] * 7, [r.text for r in responses]
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"refund_exceeds_captured"}
    order = await orders.get(order_id)
    assert (order["status"], order["refunded_cents"], len(order["refunds"])) == ("PAID", 900, 3)
    await invariants(db, {product: 10})


async def test_a_free_order_is_authorized_and_paid_without_a_payment(orders, db, new_order, invariants):
    order_id, product = await new_order(price_cents=0)

    authorized = (await orders.authorize(order_id)).json()
    paid = (await orders.capture(order_id)).json()

    assert (authorized["status"], authorized["payment_id"]) == ("AUTHORIZED", None)
    assert (paid["status"], paid["captured_cents"]) == ("PAID", 0)
    assert await payments_of(db, order_id) == []
    await invariants(db, {product: 10})


async def test_ten_concurrent_authorizations_make_one_payment(orders, db, new_order):
    order_id, _ = await new_order()

    responses = await asyncio.gather(*(orders.authorize(order_id) for _ in range(10)))

    assert [r.status_code for r in responses] == [200] * 10, [r.text for r in responses]
    assert {(r.json()["status"], r.json()["payment_id"]) for r in responses} == {
        ("AUTHORIZED", responses[0].json()["payment_id"])
    }
    [payment] = await payments_of(db, order_id)
    assert payment["id"] == responses[0].json()["payment_id"]


async def test_concurrent_declined_authorizations_count_each_attempt_once(orders, db, new_order):
    order_id, _ = await new_order()

    responses = await asyncio.gather(*(orders.authorize(order_id, DECLINED_CARD) for _ in range(10)))

    assert {r.status_code for r in responses} == {200}
    assert {r.json()["status"] for r in responses} == {"PAYMENT_FAILED"}
    # Requests that read the order before the first decline was recorded share attempt 1 (and its one
    # payment); one that read it afterwards is a new attempt. Either way: one payment per attempt.
    final = await orders.get(order_id)
    assert [p["status"] for p in await payments_of(db, order_id)] == ["declined"] * final["payment_attempts"]


async def test_orders_are_listed_by_every_new_status(orders, new_order):
    order_id, _ = await new_order()
    await orders.authorize(order_id)

    listed = (await orders.client.get("/orders", params={"status": "AUTHORIZED", "limit": 100})).json()

    assert order_id in [o["id"] for o in listed]
    assert all(o["status"] == "AUTHORIZED" for o in listed)


def luhn_card(prefix: str = "4", length: int = 16) -> str:
    """A random Luhn-valid card number, so the test can search for a number nobody else ever sent."""
    import random

    body = prefix + "".join(random.choice("0123456789") for _ in range(length - len(prefix) - 1))
    for check in "0123456789":
        digits = [int(d) for d in reversed(body + check)]
        total = sum(d if i % 2 == 0 else (d * 2 - 9 if d > 4 else d * 2) for i, d in enumerate(digits))
        if total % 10 == 0:
            return body + check
    raise AssertionError("unreachable: one check digit always fits")


@pytest.fixture(scope="module")
def orders_without_payments(service_database_urls, credential_settings):
    """An orders app whose payments is gone. Module-scoped on purpose: an app made inside a capfd test would
    bind the process-wide log stream to capfd's file, which closes when that test ends."""
    from devstack.embedded import free_port
    from devstack.testing import LiveServer
    from orders.app import create_app
    from orders.settings import OrdersSettings

    settings = OrdersSettings(
        database_url=service_database_urls["orders"],
        payments_url=f"http://127.0.0.1:{free_port()}",
        **credential_settings("orders"),
        payments_retry_attempts=2,
        payments_retry_wait_initial_s=0.01,
    )
    with LiveServer(create_app(settings)) as server:
        yield server.url


async def test_no_full_card_number_reaches_any_table_or_log_line(
    orders, db, new_order, orders_without_payments, as_gateway, capfd
):
    card = luhn_card()
    spaced = " ".join(card[i : i + 4] for i in range(0, 16, 4))
    bad = card[:-1] + str((int(card[-1]) + 1) % 10)  # fails Luhn
    authorized_id, _ = await new_order()
    invalid_id, _ = await new_order()
    down_id, _ = await new_order()

    assert (await orders.authorize(authorized_id, spaced)).json()["status"] == "AUTHORIZED"
    assert (await orders.authorize(invalid_id, bad)).status_code == 422
    assert (await orders.capture(authorized_id)).status_code == 200
    async with httpx.AsyncClient(base_url=orders_without_payments, headers=as_gateway) as client:
        down = await client.post(f"/orders/{down_id}/authorize", json={"card_number": card})
    assert down.status_code == 503

    captured = capfd.readouterr()
    logs = captured.out + captured.err
    # Positive controls: the log holds these requests, and the tables hold the last four digits.
    assert f'"order_id": {authorized_id}' in logs
    assert "order_authorization_recorded" in logs
    for number in (card, spaced, bad, card[:12]):
        assert number not in logs
        assert number.replace(" ", "") not in logs.replace(" ", "").replace("-", "")
    tables = await db.fetch(
        "SELECT table_schema, table_name FROM information_schema.tables"
        " WHERE table_schema IN ('orders', 'payments') AND table_type = 'BASE TABLE'"
    )
    assert {"orders.orders", "orders.refunds", "payments.payments"} <= {
        f"{t['table_schema']}.{t['table_name']}" for t in tables
    }

    async def rows_holding(text: str) -> int:
        found = 0
        for table in tables:
            name = f'"{table["table_schema"]}"."{table["table_name"]}"'
            row_text = "replace(CAST(t AS text), ' ', '')"
            if table["table_name"] == "idempotency_keys":  # stored responses are bytea: read them as text
                row_text += " || COALESCE(convert_from(t.response_body, 'UTF8'), '')"
            found += await db.fetchval(
                f"SELECT count(*) FROM {name} AS t WHERE {row_text} LIKE $1", f"%{text}%"
            )
        return found

    assert await rows_holding(f"{card[-4:]}") >= 2  # orders.orders.card_last4 and payments.payments
    for number in (card, bad, card[:12]):
        assert await rows_holding(number) == 0, number


async def test_a_lapsed_authorization_cannot_be_captured_and_a_cancel_releases_it(
    orders, db, new_order, invariants
):
    order_id, product = await new_order()
    authorized = (await orders.authorize(order_id)).json()
    await db.execute(
        "UPDATE payments.payments SET authorization_expires_at = now() - interval '1 second' WHERE id = $1",
        authorized["payment_id"],
    )

    capture = await orders.capture(order_id)

    assert (capture.status_code, capture.json()["code"]) == (409, "authorization_expired")
    assert (await orders.get(order_id))["status"] == "AUTHORIZED"
    assert (await orders.cancel(order_id)).json()["status"] == "CANCELLED"
    assert [p["status"] for p in await payments_of(db, order_id)] == ["voided"]
    await invariants(db, {product: 10})


async def test_the_invariant_check_sees_money_and_stock_that_do_not_add_up(orders, db, new_order, invariants):
    """A positive control for assert_money_and_stock_invariants, which every lifecycle test ends with."""
    order_id, product = await new_order()
    await orders.authorize(order_id)
    await orders.capture(order_id)
    await invariants(db, {product: 10})

    await db.execute("UPDATE orders.orders SET status = 'CANCELLED' WHERE id = $1", order_id)  # no refund
    with pytest.raises(AssertionError, match="invariant 2"):
        await invariants(db, {product: 10})
    await db.execute("UPDATE orders.orders SET status = 'PAID', refunded_cents = 1 WHERE id = $1", order_id)
    with pytest.raises(AssertionError, match="invariant 1"):
        await invariants(db, {product: 10})
    await db.execute("UPDATE orders.orders SET refunded_cents = 0 WHERE id = $1", order_id)
    await db.execute("UPDATE inventory.products SET stock_qty = stock_qty + 1 WHERE id = $1", product)
    with pytest.raises(AssertionError, match="invariant 3"):
        await invariants(db, {product: 10})
