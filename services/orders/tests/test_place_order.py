import httpx
import pytest


@pytest.fixture
async def client(orders_url: str, as_gateway: dict[str, str]):
    async with httpx.AsyncClient(base_url=orders_url, headers=as_gateway, timeout=30) as client:
        yield client


async def stock_of(db, product_id: int) -> int:
    return await db.fetchval("SELECT stock_qty FROM inventory.products WHERE id = $1", product_id)


async def test_an_order_takes_stock_and_snapshots_prices(client, db, make_product):
    mug = await make_product(stock=5, price_cents=1_200)
    pen = await make_product(stock=9, price_cents=250)

    response = await client.post(
        "/orders", json={"items": [{"productId": mug, "qty": 2}, {"productId": pen, "qty": 3}]}
    )

    assert response.status_code == 201, response.text
    placed = response.json()
    assert placed["status"] == "PENDING"
    assert placed["total_cents"] == 2 * 1_200 + 3 * 250
    assert await stock_of(db, mug) == 3
    assert await stock_of(db, pen) == 6

    await db.execute("UPDATE inventory.products SET price_cents = 9999 WHERE id = $1", mug)
    order = (await client.get(f"/orders/{placed['orderId']}")).json()
    assert order["id"] == placed["orderId"]
    assert order["total_cents"] == placed["total_cents"]
    assert order["items"] == [
        {"product_id": mug, "qty": 2, "price_cents": 1_200},
        {"product_id": pen, "qty": 3, "price_cents": 250},
    ]


async def test_lines_for_the_same_product_are_merged(client, db, make_product):
    mug = await make_product(stock=5, price_cents=100)

    response = await client.post(
        "/orders", json={"items": [{"productId": mug, "qty": 2}, {"productId": mug, "qty": 1}]}
    )

    assert response.status_code == 201
    order = (await client.get(f"/orders/{response.json()['orderId']}")).json()
    assert order["items"] == [{"product_id": mug, "qty": 3, "price_cents": 100}]
    assert await stock_of(db, mug) == 2


async def test_one_short_line_refuses_the_whole_order(client, db, make_product):
    plenty = await make_product(stock=10)
    scarce = await make_product(stock=1)
    orders_before = await db.fetchval("SELECT count(*) FROM orders.orders")

    response = await client.post(
        "/orders", json={"items": [{"productId": plenty, "qty": 4}, {"productId": scarce, "qty": 2}]}
    )

    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "insufficient_stock"
    assert problem["items"] == [{"product_id": scarce, "requested": 2, "available": 1}]
    assert f"product {scarce}: requested 2, available 1" in problem["detail"]
    assert await stock_of(db, plenty) == 10
    assert await stock_of(db, scarce) == 1
    assert await db.fetchval("SELECT count(*) FROM orders.orders") == orders_before


async def test_an_unknown_product_is_named(client, db, make_product):
    real = await make_product(stock=10)
    missing = 9_000_000_000

    response = await client.post(
        "/orders", json={"items": [{"productId": real, "qty": 1}, {"productId": missing, "qty": 1}]}
    )

    assert response.status_code == 422
    assert response.json()["code"] == "unknown_product"
    assert response.json()["product_ids"] == [missing]
    assert await stock_of(db, real) == 10


async def test_an_unknown_order_is_404(client):
    response = await client.get("/orders/123456789")
    assert response.status_code == 404
    assert response.json()["code"] == "order_not_found"


async def test_orders_are_listed_newest_first_with_status_filter_and_paging(client, make_product):
    product = await make_product(stock=100)
    ids = []
    for _ in range(3):
        ids.append(
            (await client.post("/orders", json={"items": [{"productId": product, "qty": 1}]})).json()[
                "orderId"
            ]
        )
    await client.post(f"/orders/{ids[1]}/cancel")

    first_page = (await client.get("/orders", params={"limit": 2})).json()
    assert [o["id"] for o in first_page] == [ids[2], ids[1]]
    second_page = (await client.get("/orders", params={"limit": 2, "after": ids[1]})).json()
    assert second_page[0]["id"] == ids[0]
    cancelled = (await client.get("/orders", params={"status": "CANCELLED", "limit": 100})).json()
    assert ids[1] in [o["id"] for o in cancelled]
    assert all(o["status"] == "CANCELLED" for o in cancelled)


async def test_cancel_returns_stock_once_and_is_harmless_to_repeat(client, db, make_product):
    product = await make_product(stock=5)
    order_id = (await client.post("/orders", json={"items": [{"productId": product, "qty": 3}]})).json()[
        "orderId"
    ]
    assert await stock_of(db, product) == 2

    first = await client.post(f"/orders/{order_id}/cancel")
    again = await client.post(f"/orders/{order_id}/cancel")

    assert first.status_code == 200
    assert first.json()["status"] == "CANCELLED"
    assert again.status_code == 200
    assert again.json()["status"] == "CANCELLED"
    assert await stock_of(db, product) == 5


@pytest.mark.parametrize("final_status", ["EXPIRED", "REFUNDED"])
async def test_an_expired_or_refunded_order_cannot_be_cancelled(client, db, make_product, final_status):
    product = await make_product(stock=5)
    order_id = (await client.post("/orders", json={"items": [{"productId": product, "qty": 1}]})).json()[
        "orderId"
    ]
    await db.execute("UPDATE orders.orders SET status = $2 WHERE id = $1", order_id, final_status)

    response = await client.post(f"/orders/{order_id}/cancel")

    assert response.status_code == 409
    assert response.json()["code"] == "order_not_cancellable"
    assert await stock_of(db, product) == 4


async def test_cancelling_an_unknown_order_is_404(client):
    response = await client.post("/orders/987654321/cancel")
    assert response.status_code == 404
