"""End to end: GraphQL over the real gateway, the real services and a real PostgreSQL."""

import asyncio
from typing import Any

import asyncpg
import httpx

from gateway.app import create_app
from gateway.settings import GatewaySettings
from servicekit.testing import LiveServer

from .conftest import Gql

ORDER_FIELDS = """
  id status totalCents paymentAttempts chargeId paymentFailureCode createdAt updatedAt
  items { qty priceCents product { id name stockQty } }
"""
PLACE_ORDER = f"""
mutation($input: PlaceOrderInput!) {{
  placeOrder(input: $input) {{
    order {{ {ORDER_FIELDS} }}
    errors {{ code field message productId requested available }}
  }}
}}"""
CAPTURE = f"""mutation($id: ID!) {{ capturePayment(orderId: $id) {{
  order {{ {ORDER_FIELDS} }} errors {{ code field message }} }} }}"""
CANCEL = f"""mutation($id: ID!) {{ cancelOrder(orderId: $id) {{
  order {{ {ORDER_FIELDS} }} errors {{ code field message }} }} }}"""


def lines(*pairs: tuple[int, int]) -> dict[str, Any]:
    return {"items": [{"productId": str(pid), "qty": qty} for pid, qty in pairs]}


async def test_placing_an_order_through_graphql_takes_the_stock(
    gql: Gql, make_product, db: asyncpg.Connection
):
    product = await make_product(stock=10, price_cents=1_250)
    body = await gql(PLACE_ORDER, {"input": lines((product, 3))})
    payload = body["data"]["placeOrder"]
    assert payload["errors"] == []
    order = payload["order"]
    assert order["status"] == "PENDING"
    assert order["totalCents"] == 3_750
    assert order["items"] == [
        {
            "qty": 3,
            "priceCents": 1_250,
            "product": {"id": str(product), "name": "Test product", "stockQty": 7},
        }
    ]
    seen = await gql("query($id: ID!) { product(id: $id) { stockQty } }", {"id": str(product)})
    assert seen["data"]["product"]["stockQty"] == 7
    assert await db.fetchval("SELECT stock_qty FROM inventory.products WHERE id = $1", product) == 7
    again = await gql("query($id: ID!) { order(id: $id) { id status } }", {"id": order["id"]})
    assert again["data"]["order"] == {"id": order["id"], "status": "PENDING"}


async def test_twenty_concurrent_orders_for_five_units_make_exactly_five(
    gql: Gql, make_product, db: asyncpg.Connection
):
    product = await make_product(stock=5)
    bodies = await asyncio.gather(*(gql(PLACE_ORDER, {"input": lines((product, 1))}) for _ in range(20)))
    payloads = [body["data"]["placeOrder"] for body in bodies]
    placed = [p for p in payloads if p["order"]]
    refused = [p for p in payloads if p["errors"]]
    assert len(placed) == 5
    assert len(refused) == 15
    for payload in refused:
        assert payload["order"] is None
        assert payload["errors"] == [
            {
                "code": "INSUFFICIENT_STOCK",
                "field": "items",
                "message": payload["errors"][0]["message"],
                "productId": str(product),
                "requested": 1,
                "available": 0,
            }
        ]
    assert await db.fetchval("SELECT stock_qty FROM inventory.products WHERE id = $1", product) == 0
    assert await db.fetchval("SELECT count(*) FROM orders.order_items WHERE product_id = $1", product) == 5


async def test_the_same_idempotency_key_places_one_order(gql: Gql, make_product, db: asyncpg.Connection):
    product = await make_product(stock=10)
    order_input = lines((product, 2)) | {"idempotencyKey": f"gql-{product}"}
    first, second = (
        await gql(PLACE_ORDER, {"input": order_input}),
        await gql(PLACE_ORDER, {"input": order_input}),
    )
    assert first["data"]["placeOrder"]["order"]["id"] == second["data"]["placeOrder"]["order"]["id"]
    assert await db.fetchval("SELECT stock_qty FROM inventory.products WHERE id = $1", product) == 8
    other = await gql(PLACE_ORDER, {"input": lines((product, 1)) | {"idempotencyKey": f"gql-{product}"}})
    assert [e["code"] for e in other["data"]["placeOrder"]["errors"]] == ["IDEMPOTENCY_KEY_REUSED"]


async def test_an_unknown_product_is_named_in_the_error(gql: Gql, make_product):
    product = await make_product(stock=10)
    body = await gql(PLACE_ORDER, {"input": lines((product, 1), (9_000_000_000, 1))})
    errors = body["data"]["placeOrder"]["errors"]
    assert [(e["code"], e["productId"]) for e in errors] == [("UNKNOWN_PRODUCT", "9000000000")]


async def test_capture_through_graphql_pays_the_order(gql: Gql, make_product, admin_token: str):
    product = await make_product(stock=10, price_cents=1_000)
    order = (await gql(PLACE_ORDER, {"input": lines((product, 1))}))["data"]["placeOrder"]["order"]
    paid = (await gql(CAPTURE, {"id": order["id"]}, token=admin_token))["data"]["capturePayment"]
    assert paid["errors"] == []
    assert paid["order"]["status"] == "PAID"
    assert paid["order"]["chargeId"]
    again = (await gql(CAPTURE, {"id": order["id"]}, token=admin_token))["data"]["capturePayment"]
    assert again["order"]["chargeId"] == paid["order"]["chargeId"]


async def test_a_declined_capture_returns_the_failed_order_and_the_decline(
    gql: Gql, make_product, admin_token: str
):
    product = await make_product(stock=10, price_cents=1_002)  # the simulator declines amounts ending in 02
    order = (await gql(PLACE_ORDER, {"input": lines((product, 1))}))["data"]["placeOrder"]["order"]
    declined = (await gql(CAPTURE, {"id": order["id"]}, token=admin_token))["data"]["capturePayment"]
    assert declined["order"]["status"] == "PAYMENT_FAILED"
    assert declined["order"]["paymentFailureCode"] == "card_declined"
    assert [e["code"] for e in declined["errors"]] == ["PAYMENT_DECLINED"]
    assert "card_declined" in declined["errors"][0]["message"]


async def test_cancel_gives_the_stock_back_and_a_cancelled_order_cannot_be_captured(
    gql: Gql, make_product, admin_token: str, db: asyncpg.Connection
):
    product = await make_product(stock=4)
    order = (await gql(PLACE_ORDER, {"input": lines((product, 3))}))["data"]["placeOrder"]["order"]
    cancelled = (await gql(CANCEL, {"id": order["id"]}, token=admin_token))["data"]["cancelOrder"]
    assert cancelled["order"]["status"] == "CANCELLED"
    assert await db.fetchval("SELECT stock_qty FROM inventory.products WHERE id = $1", product) == 4
    refused = (await gql(CAPTURE, {"id": order["id"]}, token=admin_token))["data"]["capturePayment"]
    assert [e["code"] for e in refused["errors"]] == ["ORDER_NOT_CAPTURABLE"]
    missing = (await gql(CANCEL, {"id": "9000000000"}, token=admin_token))["data"]["cancelOrder"]
    assert [e["code"] for e in missing["errors"]] == ["NOT_FOUND"]


async def test_products_page_by_keyset(gql: Gql, make_product):
    ids = [await make_product(stock=1, name=f"Paged {n}") for n in range(3)]
    query = """query($after: String) { products(first: 2, after: $after) {
      nodes { id name } pageInfo { endCursor hasNextPage } } }"""
    first = (await gql(query, {"after": str(ids[0] - 1)}))["data"]["products"]
    assert [n["id"] for n in first["nodes"]] == [str(ids[0]), str(ids[1])]
    assert first["pageInfo"] == {"endCursor": str(ids[1]), "hasNextPage": True}
    second = (await gql(query, {"after": first["pageInfo"]["endCursor"]}))["data"]["products"]
    assert second["nodes"][0]["id"] == str(ids[2])


async def test_admin_lists_orders_newest_first_and_by_status(gql: Gql, make_product, admin_token: str):
    product = await make_product(stock=10)
    placed = [
        (await gql(PLACE_ORDER, {"input": lines((product, 1))}))["data"]["placeOrder"]["order"]["id"]
        for _ in range(3)
    ]
    query = """query($after: String, $status: OrderStatus) {
      orders(first: 2, after: $after, status: $status) {
      nodes { id status } pageInfo { endCursor hasNextPage } } }"""
    page = (await gql(query, {"status": "PENDING"}, token=admin_token))["data"]["orders"]
    assert [int(n["id"]) for n in page["nodes"]] == sorted(
        (int(n["id"]) for n in page["nodes"]), reverse=True
    )
    assert all(n["status"] == "PENDING" for n in page["nodes"])
    assert page["pageInfo"]["hasNextPage"] is True
    after_newest = (await gql(query, {"after": placed[2]}, token=admin_token))["data"]["orders"]
    assert [n["id"] for n in after_newest["nodes"]] == [placed[1], placed[0]]


async def test_admin_manages_the_catalogue(gql: Gql, admin_token: str):
    created = (
        await gql(
            """mutation { createProduct(input: {name: "Lamp", priceCents: 4500, stockQty: 2}) {
              product { id name priceCents stockQty } errors { code field } } }""",
            token=admin_token,
        )
    )["data"]["createProduct"]
    assert created["errors"] == []
    product_id = created["product"]["id"]
    updated = (
        await gql(
            """mutation($id: ID!) { updateProduct(input: {id: $id, priceCents: 5000000000}) {
              product { name priceCents } errors { code } } }""",
            {"id": product_id},
            token=admin_token,
        )
    )["data"]["updateProduct"]
    assert updated["product"] == {"name": "Lamp", "priceCents": 5_000_000_000}
    adjust = """mutation($input: AdjustStockInput!) { adjustStock(input: $input) {
      product { stockQty } errors { code field productId } } }"""
    short = await gql(adjust, {"input": {"productId": product_id, "delta": -3}}, token=admin_token)
    assert [e["code"] for e in short["data"]["adjustStock"]["errors"]] == ["INSUFFICIENT_STOCK"]
    both = await gql(adjust, {"input": {"productId": product_id, "delta": 1, "setTo": 3}}, token=admin_token)
    assert [e["code"] for e in both["data"]["adjustStock"]["errors"]] == ["INVALID_INPUT"]
    set_to = await gql(adjust, {"input": {"productId": product_id, "setTo": 9}}, token=admin_token)
    assert set_to["data"]["adjustStock"]["product"] == {"stockQty": 9}
    invalid = (
        await gql(
            """mutation { createProduct(input: {name: "", priceCents: -1, stockQty: 1}) {
              product { id } errors { code field } } }""",
            token=admin_token,
        )
    )["data"]["createProduct"]
    assert invalid["product"] is None
    assert {e["code"] for e in invalid["errors"]} == {"INVALID_INPUT"}
    assert "input.priceCents" in {e["field"] for e in invalid["errors"]}


class CountingTransport(httpx.AsyncBaseTransport):
    """The real network, with every request remembered."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_the_products_of_orders_resolve_with_one_batched_call(
    gql: Gql, make_product, gateway_settings: GatewaySettings, admin_token: str
):
    products = [await make_product(stock=10, name=f"Line {n}") for n in range(5)]
    first = (await gql(PLACE_ORDER, {"input": lines(*((p, 1) for p in products))}))["data"]["placeOrder"]
    await gql(PLACE_ORDER, {"input": lines((products[0], 2), (products[4], 1))})
    inventory = CountingTransport()
    with LiveServer(create_app(gateway_settings, transports={"inventory": inventory})) as server:
        one = await gql(
            "query($id: ID!) { order(id: $id) { items { qty product { id name priceCents } } } }",
            {"id": first["order"]["id"]},
            url=server.url,
        )
        one_order_calls = list(inventory.requests)
        inventory.requests.clear()
        # Every line of every order on a page: still one call.
        page = await gql(
            "{ orders(first: 2) { nodes { items { product { id name } } } } }",
            url=server.url,
            token=admin_token,
        )
        page_calls = list(inventory.requests)
    assert "errors" not in one
    assert [i["product"]["id"] for i in one["data"]["order"]["items"]] == [str(p) for p in products]
    assert len(one_order_calls) == 1
    assert one_order_calls[0].url.path == "/products"
    assert sorted(int(i) for i in one_order_calls[0].url.params["ids"].split(",")) == sorted(products)
    assert "errors" not in page
    assert len(page_calls) == 1
