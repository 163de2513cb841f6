import asyncio
import uuid

import httpx
import pytest


@pytest.fixture(scope="module")
def orders_url(orders_url_each_placement: str) -> str:
    """Every test here runs with ORDERS_PLACEMENT=batched and =single."""
    return orders_url_each_placement


@pytest.fixture
async def client(orders_url: str, as_gateway: dict[str, str]):
    async with httpx.AsyncClient(base_url=orders_url, headers=as_gateway, timeout=60) as client:
        yield client


def order_body(product_id: int, qty: int = 1) -> dict:
    return {"items": [{"productId": product_id, "qty": qty}]}


async def test_the_same_key_and_body_replay_the_first_response(client, db, make_product):
    product = await make_product(stock=5)
    key = f"checkout-{uuid.uuid4()}"

    first = await client.post("/orders", json=order_body(product), headers={"Idempotency-Key": key})
    again = await client.post("/orders", json=order_body(product), headers={"Idempotency-Key": key})

    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert await db.fetchval("SELECT stock_qty FROM inventory.products WHERE id = $1", product) == 4


async def test_a_refusal_is_a_decided_answer_and_is_replayed(client, db, make_product):
    product = await make_product(stock=0)
    key = f"checkout-{uuid.uuid4()}"

    first = await client.post("/orders", json=order_body(product), headers={"Idempotency-Key": key})
    await db.execute("UPDATE inventory.products SET stock_qty = 10 WHERE id = $1", product)
    again = await client.post("/orders", json=order_body(product), headers={"Idempotency-Key": key})

    assert first.status_code == again.status_code == 409
    assert again.content == first.content
    assert await db.fetchval("SELECT stock_qty FROM inventory.products WHERE id = $1", product) == 10


async def test_the_same_key_with_another_body_is_refused(client, db, make_product):
    product = await make_product(stock=5)
    key = f"checkout-{uuid.uuid4()}"
    await client.post("/orders", json=order_body(product, 1), headers={"Idempotency-Key": key})

    response = await client.post("/orders", json=order_body(product, 2), headers={"Idempotency-Key": key})

    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert await db.fetchval("SELECT stock_qty FROM inventory.products WHERE id = $1", product) == 4


async def test_many_concurrent_requests_with_one_key_make_exactly_one_order(client, db, make_product):
    product = await make_product(stock=50)
    key = f"checkout-{uuid.uuid4()}"

    responses = await asyncio.gather(
        *(
            client.post("/orders", json=order_body(product), headers={"Idempotency-Key": key})
            for _ in range(20)
        )
    )

    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {201, 409}
    created = [r for r in responses if r.status_code == 201]
    assert len({r.json()["orderId"] for r in created}) == 1
    for busy in (r for r in responses if r.status_code == 409):
        assert busy.json()["code"] == "idempotency_key_in_use"
        assert busy.headers["Retry-After"] == "1"
    assert await db.fetchval("SELECT count(*) FROM orders.orders WHERE idempotency_key = $1", key) == 1
    assert await db.fetchval("SELECT stock_qty FROM inventory.products WHERE id = $1", product) == 49


@pytest.mark.parametrize("key", ["", "k" * 256, "bad\tkey"])
async def test_an_invalid_key_is_refused_before_anything_happens(client, db, make_product, key):
    product = await make_product(stock=5)

    response = await client.post("/orders", json=order_body(product), headers={"Idempotency-Key": key})

    assert response.status_code == 400
    assert response.json()["code"] == "idempotency_key_invalid"
    assert await db.fetchval("SELECT stock_qty FROM inventory.products WHERE id = $1", product) == 5


async def test_a_key_of_255_characters_is_accepted(client, make_product):
    product = await make_product(stock=5)
    response = await client.post(
        "/orders", json=order_body(product), headers={"Idempotency-Key": uuid.uuid4().hex.ljust(255, "k")}
    )
    assert response.status_code == 201


async def test_an_expired_key_is_treated_as_new(client, db, make_product):
    product = await make_product(stock=5)
    key = f"checkout-{uuid.uuid4()}"
    await client.post("/orders", json=order_body(product), headers={"Idempotency-Key": key})
    await db.execute(
        "UPDATE orders.idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = $1", key
    )

    again = await client.post("/orders", json=order_body(product), headers={"Idempotency-Key": key})

    assert again.status_code == 201
    assert "Idempotent-Replayed" not in again.headers
    assert await db.fetchval("SELECT stock_qty FROM inventory.products WHERE id = $1", product) == 3


@pytest.mark.parametrize("pruned", [False, True], ids=["expired", "expired-and-pruned"])
async def test_a_key_reused_after_its_ttl_with_another_body_makes_a_new_order_never_the_old_one(
    client, db, make_product, pruned
):
    """Issue 11: the order row kept its key forever, so the new claim collided with it and was answered
    with the old order. A new claim of a key is a new request."""
    mug = await make_product(stock=5)
    pen = await make_product(stock=5)
    key = f"checkout-{uuid.uuid4()}"
    first = await client.post("/orders", json=order_body(mug, 1), headers={"Idempotency-Key": key})
    await db.execute(
        "UPDATE orders.idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = $1", key
    )
    if pruned:
        await db.execute("DELETE FROM orders.idempotency_keys WHERE key = $1", key)

    again = await client.post("/orders", json=order_body(pen, 2), headers={"Idempotency-Key": key})

    assert again.status_code == 201, again.text
    assert again.json()["orderId"] != first.json()["orderId"]
    order = (await client.get(f"/orders/{again.json()['orderId']}")).json()
    assert order["items"] == [{"product_id": pen, "qty": 2, "price_cents": 1_000}]
    assert await db.fetchval("SELECT stock_qty FROM inventory.products WHERE id = $1", mug) == 4
    assert await db.fetchval("SELECT stock_qty FROM inventory.products WHERE id = $1", pen) == 3
    replay = await client.post("/orders", json=order_body(pen, 2), headers={"Idempotency-Key": key})
    assert (replay.content, replay.headers["Idempotent-Replayed"]) == (again.content, "true")


async def test_a_stale_in_flight_key_whose_order_was_made_answers_with_that_order(client, db, make_product):
    """A process died after placing the order but before storing the response: the retry finds the order."""
    product = await make_product(stock=5)
    key = f"checkout-{uuid.uuid4()}"
    first = await client.post("/orders", json=order_body(product), headers={"Idempotency-Key": key})
    await db.execute(
        """UPDATE orders.idempotency_keys
              SET state = 'in_flight', response_status = NULL, response_body = NULL,
                  locked_at = now() - interval '10 minutes'
            WHERE key = $1""",
        key,
    )

    again = await client.post("/orders", json=order_body(product), headers={"Idempotency-Key": key})

    assert again.status_code == 201
    assert again.json()["orderId"] == first.json()["orderId"]
    assert await db.fetchval("SELECT stock_qty FROM inventory.products WHERE id = $1", product) == 4
