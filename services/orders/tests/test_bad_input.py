"""Hostile and clumsy clients: every bad request gets a clear 4xx problem+json and writes nothing."""

import httpx
import pytest


@pytest.fixture
async def client(orders_url: str, as_gateway: dict[str, str]):
    async with httpx.AsyncClient(base_url=orders_url, headers=as_gateway, timeout=30) as client:
        yield client


async def snapshot(db) -> tuple:
    return (
        await db.fetchval("SELECT count(*) FROM orders.orders"),
        await db.fetchval("SELECT count(*) FROM orders.order_items"),
        await db.fetchval("SELECT coalesce(sum(stock_qty), 0) FROM inventory.products"),
        await db.fetchval("SELECT count(*) FROM orders.idempotency_keys"),
    )


BAD_BODIES = [
    ({}, 422, "items"),
    ({"items": []}, 422, "items"),
    ({"items": None}, 422, "items"),
    ({"items": "mug"}, 422, "items"),
    ({"items": [{"productId": 1}]}, 422, "items.0.qty"),
    ({"items": [{"qty": 1}]}, 422, "items.0.productId"),
    ({"items": [{"productId": "PRODUCT", "qty": 1}]}, 422, "items.0.productId"),
    ({"items": [{"productId": 1, "qty": 0}]}, 422, "items.0.qty"),
    ({"items": [{"productId": 1, "qty": -5}]}, 422, "items.0.qty"),
    ({"items": [{"productId": 1, "qty": 1.5}]}, 422, "items.0.qty"),
    ({"items": [{"productId": 1, "qty": "2"}]}, 422, "items.0.qty"),
    ({"items": [{"productId": 1, "qty": True}]}, 422, "items.0.qty"),
    ({"items": [{"productId": 1, "qty": 1_001}]}, 422, "items.0.qty"),
    ({"items": [{"productId": 1, "qty": 10**30}]}, 422, "items.0.qty"),
    ({"items": [{"productId": 0, "qty": 1}]}, 422, "items.0.productId"),
    ({"items": [{"productId": 2**63, "qty": 1}]}, 422, "items.0.productId"),
    ({"items": [{"productId": -1, "qty": 1}]}, 422, "items.0.productId"),
    ({"items": [{"productId": 1, "qty": 1, "price_cents": 1}]}, 422, "items.0.price_cents"),
    ({"items": [{"productId": i + 1, "qty": 1} for i in range(101)]}, 422, "items"),
    ([{"productId": 1, "qty": 1}], 422, None),
]


@pytest.mark.parametrize(("body", "status", "field"), BAD_BODIES)
async def test_a_malformed_order_is_refused_and_changes_nothing(
    client, db, make_product, body, status, field
):
    await make_product(stock=10)
    before = await snapshot(db)

    response = await client.post("/orders", json=body, headers={"Idempotency-Key": "bad-input-key"})

    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "validation_error"
    assert problem["detail"]
    if field:
        assert field in [e["field"] for e in problem["errors"]]
    assert "Traceback" not in response.text
    assert await snapshot(db) == before


async def test_merged_lines_above_the_maximum_are_refused(client, db, make_product):
    product = await make_product(stock=5_000)
    before = await snapshot(db)

    response = await client.post(
        "/orders", json={"items": [{"productId": product, "qty": 600}, {"productId": product, "qty": 600}]}
    )

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_quantity"
    assert await snapshot(db) == before


@pytest.mark.parametrize(
    ("content", "content_type", "status", "code"),
    [
        (b'{"items": [', "application/json", 400, "malformed_json"),
        (b"\xff\xfe\x00", "application/json", 400, "malformed_json"),
        (b"items=1", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        (b'{"items": [{"productId": 1, "qty": 1}]}', "text/plain", 415, "unsupported_media_type"),
        (b'{"items": [{"productId": 1, "qty": 1}]}', None, 415, "unsupported_media_type"),
        (b"", "application/json", 422, "validation_error"),
    ],
)
async def test_a_body_that_is_not_json_is_refused(client, db, content, content_type, status, code):
    before = await snapshot(db)
    headers = {"content-type": content_type} if content_type else {}

    response = await client.post("/orders", content=content, headers=headers)

    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert await snapshot(db) == before


@pytest.mark.parametrize(
    "path",
    ["/orders/abc", "/orders/0", "/orders/-1", f"/orders/{2**63}", "/orders/1.5", "/orders/%00"],
)
async def test_a_bad_order_id_is_a_4xx(client, path):
    response = await client.get(path)
    assert response.status_code in (404, 422)
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "params",
    [{"status": "SHIPPED"}, {"limit": 0}, {"limit": 101}, {"limit": "x"}, {"after": -1}, {"after": 2**64}],
)
async def test_bad_list_parameters_are_422(client, params):
    response = await client.get("/orders", params=params)
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


async def test_an_unknown_route_and_method_are_problem_json(client):
    missing = await client.get("/nope")
    wrong_method = await client.delete("/orders")
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    assert (wrong_method.status_code, wrong_method.json()["code"]) == (405, "method_not_allowed")


@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("authorize", {}),
        ("authorize", {"card_number": 4242424242424242}),
        ("authorize", {"card_number": "4242 4242 4242 4242", "amount_cents": 1}),
        ("authorize", {"card_number": "4" * 41}),
        ("refunds", {"amount_cents": "100"}),
        ("refunds", {"amount_cents": 2**63}),
        ("refunds", {"amount_cents": 100, "reason": 5}),
    ],
)
async def test_bad_action_bodies_are_422_and_never_echo_the_card(client, db, make_product, action, body):
    product = await make_product(stock=5)
    order_id = (await client.post("/orders", json={"items": [{"productId": product, "qty": 1}]})).json()[
        "orderId"
    ]
    before = (await client.get(f"/orders/{order_id}")).json()

    response = await client.post(
        f"/orders/{order_id}/{action}", json=body, headers={"Idempotency-Key": "k-bad"}
    )

    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"
    assert "4242" not in response.text
    assert "4444" not in response.text
    assert (await client.get(f"/orders/{order_id}")).json() == before
