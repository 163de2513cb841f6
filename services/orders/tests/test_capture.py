"""POST /orders/{id}/capture against the live payments service: outcomes, and concurrent captures."""

import asyncio

import httpx
import pytest

from servicekit.testing import log_events


@pytest.fixture
async def orders(orders_url: str):
    async with httpx.AsyncClient(base_url=orders_url, timeout=60) as client:
        yield client


@pytest.fixture
async def payments(payments_url: str):
    async with httpx.AsyncClient(base_url=payments_url, timeout=30) as client:
        yield client


@pytest.fixture
def place_order(orders, make_product):
    """An order of its own for one unit of a new product at ``price_cents``; returns the order id."""

    async def place(price_cents: int = 1_000, qty: int = 1) -> int:
        product = await make_product(stock=100, price_cents=price_cents)
        response = await orders.post("/orders", json={"items": [{"productId": product, "qty": qty}]})
        assert response.status_code == 201, response.text
        return int(response.json()["orderId"])

    return place


async def charges_of(payments: httpx.AsyncClient, order_id: int) -> list[dict]:
    response = await payments.get("/charges", params={"order_id": order_id})
    assert response.status_code == 200
    return response.json()


async def test_capture_pays_the_order_and_stores_the_charge(orders, payments, place_order):
    order_id = await place_order(price_cents=2_500, qty=2)

    response = await orders.post(f"/orders/{order_id}/capture")

    assert response.status_code == 200, response.text
    order = response.json()
    assert order["status"] == "PAID"
    assert isinstance(order["charge_id"], int)
    assert order["payment_failure_code"] is None
    assert (await orders.get(f"/orders/{order_id}")).json() == order
    [charge] = await charges_of(payments, order_id)
    assert (charge["charge_id"], charge["amount_cents"], charge["status"]) == (
        order["charge_id"],
        5_000,
        "succeeded",
    )


async def test_capturing_a_paid_order_returns_it_unchanged_and_charges_nothing(orders, payments, place_order):
    order_id = await place_order()
    paid = (await orders.post(f"/orders/{order_id}/capture")).json()

    again = await orders.post(f"/orders/{order_id}/capture")

    assert again.status_code == 200
    assert again.json() == paid
    assert len(await charges_of(payments, order_id)) == 1


async def test_a_declined_amount_fails_the_payment_with_the_reason(orders, payments, place_order):
    order_id = await place_order(price_cents=1_002)

    response = await orders.post(f"/orders/{order_id}/capture")

    assert response.status_code == 200
    order = response.json()
    assert (order["status"], order["payment_failure_code"], order["payment_attempts"]) == (
        "PAYMENT_FAILED",
        "card_declined",
        1,
    )
    assert order["charge_id"] is None
    assert (await orders.get(f"/orders/{order_id}")).json() == order
    second = (await orders.post(f"/orders/{order_id}/capture")).json()  # a new attempt, declined again
    assert (second["status"], second["payment_attempts"]) == ("PAYMENT_FAILED", 2)
    assert [c["status"] for c in await charges_of(payments, order_id)] == ["failed", "failed"]


async def test_insufficient_funds_is_reported(orders, place_order):
    order_id = await place_order(price_cents=2_005)

    order = (await orders.post(f"/orders/{order_id}/capture")).json()

    assert (order["status"], order["payment_failure_code"]) == ("PAYMENT_FAILED", "insufficient_funds")


async def test_a_cancelled_order_cannot_be_captured(orders, payments, place_order):
    order_id = await place_order()
    assert (await orders.post(f"/orders/{order_id}/cancel")).status_code == 200

    response = await orders.post(f"/orders/{order_id}/capture")

    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "order_not_capturable"
    assert await charges_of(payments, order_id) == []


async def test_capturing_an_unknown_order_is_404_and_a_bad_id_422(orders):
    assert (await orders.post(f"/orders/{2**62}/capture")).json()["code"] == "order_not_found"
    assert (await orders.post("/orders/0/capture")).status_code == 422
    assert (await orders.post("/orders/nope/capture")).status_code == 422


async def test_a_free_order_is_paid_without_a_charge(orders, payments, place_order):
    order_id = await place_order(price_cents=0)

    order = (await orders.post(f"/orders/{order_id}/capture")).json()

    assert (order["status"], order["charge_id"]) == ("PAID", None)
    assert await charges_of(payments, order_id) == []


async def test_ten_concurrent_captures_make_one_charge(orders, payments, place_order):
    order_id = await place_order(price_cents=4_200)

    responses = await asyncio.gather(*(orders.post(f"/orders/{order_id}/capture") for _ in range(10)))

    assert [r.status_code for r in responses] == [200] * 10, [
        r.text for r in responses if r.status_code != 200
    ]
    assert {r.json()["status"] for r in responses} == {"PAID"}
    assert len({r.json()["charge_id"] for r in responses}) == 1
    [charge] = await charges_of(payments, order_id)
    assert charge["status"] == "succeeded"
    assert charge["charge_id"] == responses[0].json()["charge_id"]


async def test_concurrent_captures_of_a_declined_amount_count_each_attempt_once(
    orders, payments, place_order
):
    order_id = await place_order(price_cents=3_002)

    responses = await asyncio.gather(*(orders.post(f"/orders/{order_id}/capture") for _ in range(10)))

    assert {r.status_code for r in responses} == {200}
    assert {r.json()["status"] for r in responses} == {"PAYMENT_FAILED"}
    # Captures that read the order before the first decline was recorded share attempt 1 (and its one charge);
    # a capture that read it afterwards is a new attempt. Either way: one charge per attempt, none lost.
    final = (await orders.get(f"/orders/{order_id}")).json()
    charges = await charges_of(payments, order_id)
    assert [c["status"] for c in charges] == ["failed"] * final["payment_attempts"]
    assert max(r.json()["payment_attempts"] for r in responses) == final["payment_attempts"]


async def test_a_capture_reaches_payments_under_the_same_request_id(orders, place_order, capfd):
    order_id = await place_order()

    response = await orders.post(f"/orders/{order_id}/capture", headers={"X-Request-ID": "capture-rid-1"})

    assert response.status_code == 200
    events = [e for e in log_events(capfd.readouterr().out) if e.get("request_id") == "capture-rid-1"]
    # charge_decided is payments' line, order_captured orders' (in one test process every app shares one
    # log configuration, so the events tell the services apart, not the "service" field).
    assert {"charge_decided", "order_captured"} <= {e.get("event") for e in events}
