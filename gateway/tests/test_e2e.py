"""End to end: GraphQL over the real gateway, the real services and a real PostgreSQL."""

import asyncio
import base64
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest

from devstack.testing import LiveServer, wait_until
from gateway.app import create_app
from gateway.order_tokens import OrderTokens
from gateway.settings import GatewaySettings
from orders.app import create_app as create_orders_app
from orders.settings import OrdersSettings

from .conftest import Gql

ORDER_FIELDS = """
  id status totalCents paymentAttempts paymentFailureCode createdAt updatedAt expiresAt
  authorizedCents capturedCents refundedCents cardLast4
  customer { email name address { line1 line2 city postalCode country } }
  refunds { id amountCents reason createdAt }
  items { qty priceCents product { id name stockQty } }
"""
PLACE_ORDER = f"""
mutation($input: PlaceOrderInput!) {{
  placeOrder(input: $input) {{
    order {{ {ORDER_FIELDS} }}
    accessToken
    errors {{ code field message productId requested available }}
  }}
}}"""
AUTHORIZE = f"""mutation($input: AuthorizePaymentInput!) {{ authorizePayment(input: $input) {{
  order {{ {ORDER_FIELDS} }} errors {{ code field message }} }} }}"""
CAPTURE = f"""mutation($id: ID!) {{ capturePayment(orderId: $id) {{
  order {{ {ORDER_FIELDS} }} errors {{ code field message }} }} }}"""
CANCEL = f"""mutation($id: ID!) {{ cancelOrder(orderId: $id) {{
  order {{ {ORDER_FIELDS} }} errors {{ code field message }} }} }}"""
REFUND = f"""mutation($input: RefundPaymentInput!) {{ refundPayment(input: $input) {{
  order {{ {ORDER_FIELDS} }} errors {{ code field message available }} }} }}"""
ORDER = f"""query($id: ID!, $token: String) {{ order(id: $id, accessToken: $token) {{
  {ORDER_FIELDS} payments {{ id status amountCents capturedCents refundedCents cardBrand cardLast4
  failureCode }} }} }}"""

GOOD_CARD = "4242 4242 4242 4242"
DECLINED_CARD = "4000 0000 0000 0002"
NO_FUNDS_CARD = "4000-0000-0000-9995"
CUSTOMER = {
    "email": "ada@example.com",
    "name": "Ada Lovelace",
    "address": {"line1": "12 St James's Square", "city": "London", "postalCode": "SW1Y 4JH", "country": "GB"},
}


def lines(*pairs: tuple[int, int]) -> dict[str, Any]:
    return {"items": [{"productId": str(pid), "qty": qty} for pid, qty in pairs]}


async def place(gql: Gql, *pairs: tuple[int, int], **extra: Any) -> dict[str, Any]:
    """placeOrder's payload, asserted placed."""
    payload: dict[str, Any] = (await gql(PLACE_ORDER, {"input": lines(*pairs) | extra}))["data"]["placeOrder"]
    assert payload["errors"] == [], payload
    return payload


async def authorize(gql: Gql, placed: dict[str, Any], card: str = GOOD_CARD) -> dict[str, Any]:
    variables = {
        "input": {"orderId": placed["order"]["id"], "accessToken": placed["accessToken"], "cardNumber": card}
    }
    payload: dict[str, Any] = (await gql(AUTHORIZE, variables))["data"]["authorizePayment"]
    return payload


async def refund(gql: Gql, admin_token: str, order_id: str, amount: int, key: str, **extra: Any) -> Any:
    refund_input = {"orderId": order_id, "amountCents": amount, "idempotencyKey": key} | extra
    return (await gql(REFUND, {"input": refund_input}, token=admin_token))["data"]["refundPayment"]


async def stock(db: asyncpg.Connection, product: int) -> int:
    qty: int = await db.fetchval("SELECT stock_qty FROM inventory.products WHERE id = $1", product)
    return qty


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
    assert order["expiresAt"]
    again = await gql(
        "query($id: ID!, $t: String) { order(id: $id, accessToken: $t) { id status } }",
        {"id": order["id"], "t": payload["accessToken"]},
    )
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


async def test_checkout_authorizes_then_the_admin_captures_and_refunds_in_two_parts(
    gql: Gql, make_product, admin_token: str, db: asyncpg.Connection
):
    product = await make_product(stock=10, price_cents=1_250)
    placed = await place(gql, (product, 2), customer=CUSTOMER, idempotencyKey=f"flow-{product}")
    order_id = placed["order"]["id"]
    assert placed["order"]["customer"]["address"]["postalCode"] == "SW1Y 4JH"

    declined = await authorize(gql, placed, DECLINED_CARD)
    assert declined["order"]["status"] == "PAYMENT_FAILED"
    assert declined["order"]["paymentFailureCode"] == "card_declined"
    assert declined["order"]["expiresAt"]  # the reservation holds while the shopper tries another card
    assert [(e["code"], e["field"]) for e in declined["errors"]] == [("PAYMENT_DECLINED", "input.cardNumber")]
    assert "card_declined" in declined["errors"][0]["message"]

    authorized = await authorize(gql, placed)
    assert authorized["errors"] == []
    assert authorized["order"]["status"] == "AUTHORIZED"
    assert authorized["order"]["authorizedCents"] == 2_500
    assert authorized["order"]["capturedCents"] == 0
    assert authorized["order"]["cardLast4"] == "4242"
    assert authorized["order"]["expiresAt"] is None
    again = await authorize(gql, placed)  # a double submit changes nothing
    assert again["order"]["status"] == "AUTHORIZED"

    paid = (await gql(CAPTURE, {"id": order_id}, token=admin_token))["data"]["capturePayment"]
    assert paid["errors"] == []
    assert (paid["order"]["status"], paid["order"]["capturedCents"]) == ("PAID", 2_500)

    part = await refund(gql, admin_token, order_id, 1_000, f"r1-{product}", reason="damaged")
    assert part["errors"] == []
    assert (part["order"]["status"], part["order"]["refundedCents"]) == ("PAID", 1_000)
    assert [(r["amountCents"], r["reason"]) for r in part["order"]["refunds"]] == [(1_000, "damaged")]
    replay = await refund(gql, admin_token, order_id, 1_000, f"r1-{product}", reason="damaged")
    assert replay["order"]["refundedCents"] == 1_000  # the same key refunds once

    too_much = await refund(gql, admin_token, order_id, 1_501, f"r2-{product}")
    assert [(e["code"], e["field"]) for e in too_much["errors"]] == [
        ("REFUND_EXCEEDS_CAPTURED", "input.amountCents")
    ]
    rest = await refund(gql, admin_token, order_id, 1_500, f"r3-{product}")
    assert (rest["order"]["status"], rest["order"]["refundedCents"]) == ("REFUNDED", 2_500)
    assert await stock(db, product) == 8  # refunds do not restock

    after = await refund(gql, admin_token, order_id, 1, f"r4-{product}")
    assert [e["code"] for e in after["errors"]] == ["ORDER_NOT_REFUNDABLE"]

    seen = (await gql(ORDER, {"id": order_id}, token=admin_token))["data"]["order"]
    assert [(p["status"], p["failureCode"]) for p in seen["payments"]] == [
        ("declined", "card_declined"),
        ("refunded", None),
    ]
    assert seen["payments"][1]["capturedCents"] == seen["payments"][1]["refundedCents"] == 2_500
    # The shopper's own view: their order, never the payment timeline.
    mine = (await gql(ORDER, {"id": order_id, "token": placed["accessToken"]}))["data"]["order"]
    assert mine["status"] == "REFUNDED"
    assert mine["payments"] == []


async def test_insufficient_funds_then_another_card(gql: Gql, make_product):
    product = await make_product(stock=3, price_cents=700)
    placed = await place(gql, (product, 1))
    poor = await authorize(gql, placed, NO_FUNDS_CARD)
    assert poor["order"]["paymentFailureCode"] == "insufficient_funds"
    assert [e["code"] for e in poor["errors"]] == ["PAYMENT_DECLINED"]
    ok = await authorize(gql, placed, "5555 5555 5555 4444")
    assert ok["order"]["status"] == "AUTHORIZED"
    assert ok["order"]["paymentAttempts"] == 2


async def test_a_card_number_that_is_not_one_is_invalid_card(gql: Gql, make_product):
    product = await make_product(stock=3)
    placed = await place(gql, (product, 1))
    for card in ("4242 4242 4242 4241", "1234", "4242-4242-4242-4242-4242-4242-4242"):
        refused = await authorize(gql, placed, card)
        assert refused["order"] is None
        assert [(e["code"], e["field"]) for e in refused["errors"]] == [("INVALID_CARD", "input.cardNumber")]
    assert (await authorize(gql, placed))["order"]["status"] == "AUTHORIZED"


async def test_capture_needs_an_authorized_order(gql: Gql, make_product, admin_token: str):
    product = await make_product(stock=3)
    placed = await place(gql, (product, 1))
    pending = (await gql(CAPTURE, {"id": placed["order"]["id"]}, token=admin_token))["data"]["capturePayment"]
    assert [e["code"] for e in pending["errors"]] == ["ORDER_NOT_AUTHORIZED"]
    await authorize(gql, placed, DECLINED_CARD)
    failed = (await gql(CAPTURE, {"id": placed["order"]["id"]}, token=admin_token))["data"]["capturePayment"]
    assert [e["code"] for e in failed["errors"]] == ["ORDER_NOT_AUTHORIZED"]


async def test_cancelling_a_paid_order_refunds_it_and_gives_the_stock_back(
    gql: Gql, make_product, admin_token: str, db: asyncpg.Connection
):
    product = await make_product(stock=5, price_cents=900)
    placed = await place(gql, (product, 2))
    await authorize(gql, placed)
    order_id = placed["order"]["id"]
    await gql(CAPTURE, {"id": order_id}, token=admin_token)
    assert await stock(db, product) == 3
    cancelled = (await gql(CANCEL, {"id": order_id}, token=admin_token))["data"]["cancelOrder"]
    assert cancelled["errors"] == []
    assert cancelled["order"]["status"] == "CANCELLED"
    assert await stock(db, product) == 5

    async def refunded_in_full() -> bool:
        order = (await gql(ORDER, {"id": order_id}, token=admin_token))["data"]["order"]
        return [(p["status"], p["refundedCents"]) for p in order["payments"]] == [("refunded", 1_800)]

    await wait_until(refunded_in_full, within_s=30)
    # A cancelled order cannot be paid for, captured or refunded again.
    assert [e["code"] for e in (await authorize(gql, placed))["errors"]] == ["ORDER_NOT_AUTHORIZABLE"]
    refused = (await gql(CAPTURE, {"id": order_id}, token=admin_token))["data"]["capturePayment"]
    assert [e["code"] for e in refused["errors"]] == ["ORDER_NOT_CAPTURABLE"]
    assert [
        e["code"] for e in (await refund(gql, admin_token, order_id, 1, f"late-{order_id}"))["errors"]
    ] == ["ORDER_NOT_REFUNDABLE"]


async def test_cancelling_an_authorized_order_voids_the_authorization(
    gql: Gql, make_product, admin_token: str, db: asyncpg.Connection
):
    product = await make_product(stock=4)
    placed = await place(gql, (product, 3))
    await authorize(gql, placed)
    order_id = placed["order"]["id"]
    cancelled = (await gql(CANCEL, {"id": order_id}, token=admin_token))["data"]["cancelOrder"]
    assert cancelled["order"]["status"] == "CANCELLED"
    assert await stock(db, product) == 4

    async def voided() -> bool:
        order = (await gql(ORDER, {"id": order_id}, token=admin_token))["data"]["order"]
        return [p["status"] for p in order["payments"]] == ["voided"]

    await wait_until(voided, within_s=30)
    missing = (await gql(CANCEL, {"id": "9000000000"}, token=admin_token))["data"]["cancelOrder"]
    assert [e["code"] for e in missing["errors"]] == ["NOT_FOUND"]


async def test_an_order_is_visible_only_to_its_token_and_to_admins(gql: Gql, make_product, admin_token: str):
    product = await make_product(stock=5)
    placed = await place(gql, (product, 1), customer=CUSTOMER)
    other = await place(gql, (product, 1))
    order_id = placed["order"]["id"]
    for variables in (
        {"id": order_id},
        {"id": order_id, "token": ""},
        {"id": order_id, "token": other["accessToken"]},
        {"id": order_id, "token": placed["accessToken"][:-2]},
        {"id": "9000000000", "token": placed["accessToken"]},
    ):
        assert await gql(ORDER, variables) == {"data": {"order": None}}, variables
    mine = (await gql(ORDER, {"id": order_id, "token": placed["accessToken"]}))["data"]["order"]
    assert mine["id"] == order_id
    assert mine["customer"]["email"] == "ada@example.com"
    as_admin = (await gql(ORDER, {"id": order_id}, token=admin_token))["data"]["order"]
    assert as_admin["id"] == order_id
    # An admin asking for an order that does not exist gets null too.
    ghost = await gql(ORDER, {"id": "9000000000"}, token=admin_token)
    assert ghost == {"data": {"order": None}}


async def test_the_access_token_is_long_and_the_same_on_a_replay(
    gql: Gql, make_product, order_tokens: OrderTokens
):
    product = await make_product(stock=5)
    key = f"token-{product}"
    first = await place(gql, (product, 1), idempotencyKey=key)
    again = await place(gql, (product, 1), idempotencyKey=key)
    token = first["accessToken"]
    assert again["accessToken"] == token
    assert again["order"]["id"] == first["order"]["id"]
    assert len(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))) * 8 >= 128
    assert token == order_tokens.issue(int(first["order"]["id"]))
    assert (await place(gql, (product, 1)))["accessToken"] != token


@pytest.fixture
def quick_expiry_gateway_url(
    service_database_urls: dict[str, str],
    payments_url: str,
    inventory_url: str,
    gateway_settings: GatewaySettings,
    credential_settings: Callable[[str], dict[str, Any]],
) -> Iterator[str]:
    """A gateway over an orders whose reservations last one second."""
    settings = OrdersSettings(
        database_url=service_database_urls["orders"],
        payments_url=payments_url,
        **credential_settings("orders"),
        reservation_ttl_s=1,
        expiry_sweep_interval_s=1,
    )
    with LiveServer(create_orders_app(settings)) as orders:
        gateway = gateway_settings.model_copy(update={"orders_url": orders.url})
        with LiveServer(create_app(gateway)) as server:
            yield server.url


async def test_an_expired_reservation_cannot_be_paid_and_its_stock_comes_back(
    gql: Gql, make_product, quick_expiry_gateway_url: str, db: asyncpg.Connection
):
    product = await make_product(stock=2)
    body = await gql(PLACE_ORDER, {"input": lines((product, 2))}, url=quick_expiry_gateway_url)
    placed = body["data"]["placeOrder"]
    expires_at = datetime.fromisoformat(placed["order"]["expiresAt"])

    async def past_the_deadline() -> bool:
        return datetime.now(UTC) > expires_at

    await wait_until(past_the_deadline, within_s=10)
    variables = {
        "input": {
            "orderId": placed["order"]["id"],
            "accessToken": placed["accessToken"],
            "cardNumber": GOOD_CARD,
        }
    }
    late = (await gql(AUTHORIZE, variables, url=quick_expiry_gateway_url))["data"]["authorizePayment"]
    assert [e["code"] for e in late["errors"]] == ["ORDER_EXPIRED"]

    async def restocked() -> bool:
        return await stock(db, product) == 2

    await wait_until(restocked, within_s=15)
    seen = await gql(
        "query($id: ID!, $t: String) { order(id: $id, accessToken: $t) { status expiresAt } }",
        {"id": placed["order"]["id"], "t": placed["accessToken"]},
        url=quick_expiry_gateway_url,
    )
    assert seen["data"]["order"]["status"] == "EXPIRED"


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
            "query($id: ID!, $t: String) { order(id: $id, accessToken: $t) "
            "{ items { qty product { id name priceCents } } } }",
            {"id": first["order"]["id"], "t": first["accessToken"]},
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
