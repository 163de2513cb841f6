"""Resolvers against stand-in upstreams (httpx.MockTransport): how each upstream answer becomes a payload or
an error, and what never leaks."""

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from devstack.testing import LiveServer
from gateway.app import create_app
from gateway.order_tokens import OrderTokens
from gateway.settings import GatewaySettings

from .conftest import Gql, error_codes

Handler = Callable[[httpx.Request], httpx.Response]

ORDER = {
    "id": 7,
    "status": "PENDING",
    "total_cents": 3_000,
    "items": [
        {"product_id": 1, "qty": 1, "price_cents": 1_000},
        {"product_id": 2, "qty": 2, "price_cents": 1_000},
    ],
    "expires_at": "2026-01-01T00:15:00Z",
    "authorized_cents": 0,
    "captured_cents": 0,
    "refunded_cents": 0,
    "card_last4": None,
    "payment_id": None,
    "payment_failure_code": None,
    "payment_attempts": 0,
    "customer": None,
    "refunds": [],
    "created_at": "2026-01-01T00:00:00Z",
    "updated_at": "2026-01-01T00:00:00Z",
}
AUTHORIZED = ORDER | {
    "status": "AUTHORIZED",
    "expires_at": None,
    "authorized_cents": 3_000,
    "card_last4": "4242",
    "payment_id": 11,
    "payment_attempts": 1,
}
PAID = AUTHORIZED | {"status": "PAID", "captured_cents": 3_000}
PAYMENT = {
    "payment_id": 11,
    "order_id": 7,
    "amount_cents": 3_000,
    "captured_cents": 0,
    "refunded_cents": 0,
    "status": "authorized",
    "failure_code": None,
    "card_brand": "visa",
    "card_last4": "4242",
    "authorization_expires_at": "2026-01-08T00:00:00Z",
    "created_at": "2026-01-01T00:00:00Z",
    "updated_at": "2026-01-01T00:00:00Z",
    "refunds": [],
}


def problem(status: int, code: str, **extra: Any) -> httpx.Response:
    return httpx.Response(
        status,
        json={
            "type": f"urn:lockstock:problem:{code}",
            "title": code,
            "status": status,
            "detail": "x",
            "code": code,
        }
        | extra,
        headers={"content-type": "application/problem+json"},
    )


class Upstreams:
    """Stand-ins for inventory, orders and payments; tests set the ``orders`` / ``inventory`` / ``payments``
    handlers."""

    def __init__(self) -> None:
        self.calls: list[httpx.Request] = []
        self.orders: Handler = lambda request: httpx.Response(404)
        self.payments: Handler = lambda request: httpx.Response(200, json=[])
        self.inventory: Handler = self.default_inventory

    @staticmethod
    def default_inventory(request: httpx.Request) -> httpx.Response:
        ids = [int(i) for i in request.url.params.get("ids", "").split(",") if i]
        return httpx.Response(
            200, json=[{"id": i, "name": f"P{i}", "price_cents": 1_000, "stock_qty": 5} for i in ids]
        )

    def transport(self, name: str) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            self.calls.append(request)
            handler: Handler = getattr(self, name)
            return handler(request)

        return httpx.MockTransport(handle)


@pytest.fixture(scope="module")
def upstreams() -> Upstreams:
    return Upstreams()


@pytest.fixture(scope="module")
def mocked_gateway_url(upstreams: Upstreams, gateway_settings: GatewaySettings) -> Iterator[str]:
    transports = {name: upstreams.transport(name) for name in ("inventory", "orders", "payments")}
    with LiveServer(create_app(gateway_settings, transports=transports)) as server:
        yield server.url


@pytest.fixture(autouse=True)
def fresh(upstreams: Upstreams) -> None:
    upstreams.calls.clear()
    upstreams.orders = lambda request: httpx.Response(404)
    upstreams.payments = lambda request: httpx.Response(200, json=[])
    upstreams.inventory = upstreams.default_inventory


@pytest.fixture
def token_7(order_tokens: OrderTokens) -> str:
    return order_tokens.issue(7)


PLACE = """mutation($i: PlaceOrderInput!) { placeOrder(input: $i) {
  order { id totalCents items { qty product { id name } } }
  accessToken
  errors { code field message productId requested available } } }"""
CAPTURE = """mutation { capturePayment(orderId: "7") { order { id status paymentFailureCode }
  errors { code field message } } }"""
AUTHORIZE = """mutation($i: AuthorizePaymentInput!) { authorizePayment(input: $i) {
  order { id status paymentFailureCode cardLast4 authorizedCents }
  errors { code field message } } }"""
REFUND = """mutation($i: RefundPaymentInput!) { refundPayment(input: $i) {
  order { id status refundedCents refunds { id amountCents reason } }
  errors { code field message available } } }"""
ORDER_QUERY = """query($id: ID!, $token: String) { order(id: $id, accessToken: $token) {
  id status customer { email name address { line1 line2 city postalCode country } }
  payments { id status amountCents cardLast4 } } }"""
CUSTOMER = {
    "email": "ada@example.com",
    "name": "Ada Lovelace",
    "address": {"line1": "12 St James's Sq", "city": "London", "postalCode": "SW1Y 4JH", "country": "gb"},
}


async def test_place_order_maps_the_input_to_orders_and_passes_the_idempotency_key(
    gql: Gql, mocked_gateway_url: str, upstreams: Upstreams
) -> None:
    def orders(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(201, json={"orderId": 7, "status": "PENDING", "total_cents": 3_000})
        return httpx.Response(200, json=ORDER)

    upstreams.orders = orders
    items = [{"productId": "1", "qty": 1}, {"productId": "2", "qty": 2}]
    body = await gql(PLACE, {"i": {"items": items, "idempotencyKey": "checkout-1"}}, url=mocked_gateway_url)
    assert body["data"]["placeOrder"]["errors"] == []
    assert body["data"]["placeOrder"]["order"]["items"][1] == {"qty": 2, "product": {"id": "2", "name": "P2"}}
    post = upstreams.calls[0]
    assert (post.method, post.url.path) == ("POST", "/orders")
    assert json.loads(post.content) == {"items": [{"productId": 1, "qty": 1}, {"productId": 2, "qty": 2}]}
    assert post.headers["Idempotency-Key"] == "checkout-1"
    assert all(call.headers.get("X-Request-ID") for call in upstreams.calls)


async def test_place_order_asking_only_what_placing_answers_makes_one_call_to_orders(
    gql: Gql, mocked_gateway_url: str, upstreams: Upstreams
) -> None:
    placed = {"orderId": 7, "status": "PENDING", "total_cents": 3_000, "expires_at": "2030-01-01T00:00:00Z"}

    def orders(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(201, json=placed)
        return httpx.Response(200, json=ORDER)

    upstreams.orders = orders
    only_placed = """mutation($i: PlaceOrderInput!) { placeOrder(input: $i) {
      order { id ...Placed } accessToken errors { code } } }
      fragment Placed on Order { status totalCents expiresAt }"""
    body = await gql(only_placed, {"i": {"items": [{"productId": "1", "qty": 1}]}}, url=mocked_gateway_url)
    payload = body["data"]["placeOrder"]
    assert payload["order"] == {
        "id": "7",
        "status": "PENDING",
        "totalCents": 3_000,
        "expiresAt": "2030-01-01T00:00:00+00:00",
    }
    assert payload["accessToken"]
    assert [(call.method, call.url.path) for call in upstreams.calls] == [("POST", "/orders")]

    upstreams.calls.clear()
    # One field more (inside an inline fragment, even) and the order is read back for it.
    more = """mutation($i: PlaceOrderInput!) { placeOrder(input: $i) {
      order { id ... on Order { createdAt } } errors { code } } }"""
    body = await gql(more, {"i": {"items": [{"productId": "1", "qty": 1}]}}, url=mocked_gateway_url)
    assert body["data"]["placeOrder"]["order"]["createdAt"] == ORDER["created_at"].replace("Z", "+00:00")
    assert [(call.method, call.url.path) for call in upstreams.calls] == [
        ("POST", "/orders"),
        ("GET", "/orders/7"),
    ]


async def test_the_request_id_travels_to_every_upstream(
    mocked_gateway_url: str, upstreams: Upstreams, http: httpx.AsyncClient, token_7: str
) -> None:
    upstreams.orders = lambda request: httpx.Response(200, json=ORDER)
    response = await http.post(
        f"{mocked_gateway_url}/graphql",
        json={
            "query": "query($t: String) { order(id: 7, accessToken: $t) { items { product { name } } } }",
            "variables": {"t": token_7},
        },
        headers={"X-Request-ID": "trace-me-42"},
    )
    assert response.headers["x-request-id"] == "trace-me-42"
    assert [c.headers["X-Request-ID"] for c in upstreams.calls] == ["trace-me-42", "trace-me-42"]


async def test_insufficient_stock_names_each_short_product(
    gql: Gql, mocked_gateway_url: str, upstreams: Upstreams
) -> None:
    short = [
        {"product_id": 1, "requested": 3, "available": 1},
        {"product_id": 2, "requested": 2, "available": 0},
    ]
    upstreams.orders = lambda request: problem(409, "insufficient_stock", items=short)
    items = [{"productId": "1", "qty": 3}, {"productId": "2", "qty": 2}]
    errors = (await gql(PLACE, {"i": {"items": items}}, url=mocked_gateway_url))["data"]["placeOrder"][
        "errors"
    ]
    assert [(e["code"], e["productId"], e["requested"], e["available"]) for e in errors] == [
        ("INSUFFICIENT_STOCK", "1", 3, 1),
        ("INSUFFICIENT_STOCK", "2", 2, 0),
    ]


async def test_unknown_products_and_validation_errors_are_mapped(
    gql: Gql, mocked_gateway_url: str, upstreams: Upstreams
) -> None:
    upstreams.orders = lambda request: problem(422, "unknown_product", product_ids=[5, 6])
    errors = (await gql(PLACE, {"i": {"items": [{"productId": "5", "qty": 1}]}}, url=mocked_gateway_url))[
        "data"
    ]["placeOrder"]["errors"]
    assert [(e["code"], e["productId"]) for e in errors] == [
        ("UNKNOWN_PRODUCT", "5"),
        ("UNKNOWN_PRODUCT", "6"),
    ]

    upstreams.orders = lambda request: problem(
        422, "validation_error", errors=[{"field": "items.0.product_id", "message": "bad", "type": "x"}]
    )
    errors = (await gql(PLACE, {"i": {"items": [{"productId": "5", "qty": 1}]}}, url=mocked_gateway_url))[
        "data"
    ]["placeOrder"]["errors"]
    assert [(e["code"], e["field"]) for e in errors] == [("INVALID_INPUT", "input.items.0.productId")]


async def test_an_invalid_quantity_never_reaches_orders(
    gql: Gql, mocked_gateway_url: str, upstreams: Upstreams
) -> None:
    body = await gql(PLACE, {"i": {"items": [{"productId": "1", "qty": 1001}]}}, url=mocked_gateway_url)
    errors = body["data"]["placeOrder"]["errors"]
    assert [(e["code"], e["field"], e["productId"]) for e in errors] == [
        ("INVALID_QUANTITY", "input.items.0.qty", "1")
    ]
    assert upstreams.calls == []


@pytest.mark.parametrize(
    ("answer", "order_status", "codes"),
    [
        (lambda r: httpx.Response(200, json=PAID), "PAID", []),
        (lambda r: problem(409, "order_not_authorized"), None, ["ORDER_NOT_AUTHORIZED"]),
        (lambda r: problem(409, "authorization_expired"), None, ["AUTHORIZATION_EXPIRED"]),
        (lambda r: problem(503, "payments_unavailable"), None, ["PAYMENT_UNAVAILABLE"]),
        (lambda r: problem(409, "order_not_capturable"), None, ["ORDER_NOT_CAPTURABLE"]),
        (lambda r: problem(404, "order_not_found"), None, ["NOT_FOUND"]),
    ],
)
async def test_capture_outcomes_become_payload_errors(
    gql: Gql,
    mocked_gateway_url: str,
    upstreams: Upstreams,
    admin_token: str,
    answer: Handler,
    order_status: str | None,
    codes: list[str],
) -> None:
    upstreams.orders = answer
    payload = (await gql(CAPTURE, token=admin_token, url=mocked_gateway_url))["data"]["capturePayment"]
    assert [e["code"] for e in payload["errors"]] == codes
    assert (payload["order"] or {}).get("status") == order_status
    assert [(c.method, c.url.path) for c in upstreams.calls] == [("POST", "/orders/7/capture")]


@pytest.mark.parametrize(
    ("answer", "order_status", "errors"),
    [
        (lambda r: httpx.Response(200, json=AUTHORIZED), "AUTHORIZED", []),
        (
            lambda r: httpx.Response(
                200, json=ORDER | {"status": "PAYMENT_FAILED", "payment_failure_code": "insufficient_funds"}
            ),
            "PAYMENT_FAILED",
            [("PAYMENT_DECLINED", "input.cardNumber")],
        ),
        (lambda r: problem(409, "order_expired"), None, [("ORDER_EXPIRED", None)]),
        (lambda r: problem(409, "order_not_authorizable"), None, [("ORDER_NOT_AUTHORIZABLE", None)]),
        (lambda r: problem(422, "invalid_card"), None, [("INVALID_CARD", "input.cardNumber")]),
        (lambda r: problem(503, "payments_unavailable"), None, [("PAYMENT_UNAVAILABLE", None)]),
        (lambda r: problem(404, "order_not_found"), None, [("NOT_FOUND", "input.orderId")]),
    ],
)
async def test_authorize_outcomes_become_payload_errors(
    gql: Gql,
    mocked_gateway_url: str,
    upstreams: Upstreams,
    token_7: str,
    answer: Handler,
    order_status: str | None,
    errors: list[tuple[str, str | None]],
) -> None:
    upstreams.orders = answer
    card = "4242 4242 4242 4242"
    variables = {"i": {"orderId": "7", "accessToken": token_7, "cardNumber": card}}
    payload = (await gql(AUTHORIZE, variables, url=mocked_gateway_url))["data"]["authorizePayment"]
    assert [(e["code"], e["field"]) for e in payload["errors"]] == errors
    assert (payload["order"] or {}).get("status") == order_status
    if order_status == "PAYMENT_FAILED":
        assert "insufficient_funds" in payload["errors"][0]["message"]
    [call] = upstreams.calls
    assert (call.method, call.url.path) == ("POST", "/orders/7/authorize")
    assert json.loads(call.content) == {"card_number": card}  # orders decides the amount, never the client
    assert card.replace(" ", "") not in json.dumps(payload)


async def test_authorize_with_a_wrong_token_is_not_found_exactly_like_a_missing_order(
    gql: Gql, mocked_gateway_url: str, upstreams: Upstreams, token_7: str, order_tokens: OrderTokens
) -> None:
    upstreams.orders = lambda r: problem(404, "order_not_found")

    async def authorize(order_id: str, token: str) -> dict[str, Any]:
        variables = {"i": {"orderId": order_id, "accessToken": token, "cardNumber": "4242424242424242"}}
        payload: dict[str, Any] = (await gql(AUTHORIZE, variables, url=mocked_gateway_url))["data"][
            "authorizePayment"
        ]
        return payload

    missing = await authorize("7", token_7)  # a right token for an order orders does not have
    assert len(upstreams.calls) == 1
    upstreams.calls.clear()
    for order_id, token in [
        ("7", order_tokens.issue(8)),  # another order's token
        ("7", token_7[:-1] + ("A" if token_7[-1] != "A" else "B")),
        ("7", ""),
        ("abc", token_7),
        ("8", token_7),
    ]:
        assert await authorize(order_id, token) == missing
    assert missing == {
        "order": None,
        "errors": [{"code": "NOT_FOUND", "field": "input.orderId", "message": "There is no such order."}],
    }
    assert upstreams.calls == []  # a wrong token never reaches orders


async def test_order_is_null_without_the_right_token_and_never_asks_orders(
    gql: Gql, mocked_gateway_url: str, upstreams: Upstreams, token_7: str, order_tokens: OrderTokens
) -> None:
    upstreams.orders = lambda r: httpx.Response(200, json=ORDER)
    for variables in ({"id": "7"}, {"id": "7", "token": order_tokens.issue(8)}, {"id": "7", "token": "x"}):
        assert await gql(ORDER_QUERY, variables, url=mocked_gateway_url) == {"data": {"order": None}}
    assert upstreams.calls == []
    mine = await gql(ORDER_QUERY, {"id": "7", "token": token_7}, url=mocked_gateway_url)
    assert mine["data"]["order"]["id"] == "7"
    # A shopper sees their order, never its payments (nor is payments asked).
    assert mine["data"]["order"]["payments"] == []
    assert [c.url.path for c in upstreams.calls if c.url.path == "/payments"] == []


async def test_an_admin_reads_any_order_with_its_payment_timeline(
    gql: Gql, mocked_gateway_url: str, upstreams: Upstreams, admin_token: str
) -> None:
    upstreams.orders = lambda r: httpx.Response(200, json=AUTHORIZED)
    upstreams.payments = lambda r: httpx.Response(200, json=[PAYMENT | {"payment_id": 10}, PAYMENT])
    order = (await gql(ORDER_QUERY, {"id": "7"}, token=admin_token, url=mocked_gateway_url))["data"]["order"]
    assert order["status"] == "AUTHORIZED"
    assert order["payments"] == [
        {"id": "10", "status": "authorized", "amountCents": 3_000, "cardLast4": "4242"},
        {"id": "11", "status": "authorized", "amountCents": 3_000, "cardLast4": "4242"},
    ]
    [listed] = [c for c in upstreams.calls if c.url.path == "/payments"]
    assert listed.url.params["order_id"] == "7"


async def test_a_page_of_orders_asks_payments_once_per_order(
    gql: Gql, mocked_gateway_url: str, upstreams: Upstreams, admin_token: str
) -> None:
    upstreams.orders = lambda r: httpx.Response(200, json=[ORDER | {"id": 9}, ORDER | {"id": 8}, ORDER])
    upstreams.payments = lambda r: httpx.Response(
        200, json=[PAYMENT | {"order_id": int(r.url.params["order_id"])}]
    )
    page = await gql(
        "{ orders(first: 3) { nodes { id payments { id } } } }", token=admin_token, url=mocked_gateway_url
    )
    assert [len(n["payments"]) for n in page["data"]["orders"]["nodes"]] == [1, 1, 1]
    asked = sorted(c.url.params["order_id"] for c in upstreams.calls if c.url.path == "/payments")
    assert asked == ["7", "8", "9"]


async def test_place_order_sends_the_customer_and_answers_a_stable_access_token(
    gql: Gql, mocked_gateway_url: str, upstreams: Upstreams, token_7: str
) -> None:
    def orders(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(201, json={"orderId": 7, "status": "PENDING", "total_cents": 3_000})
        return httpx.Response(200, json=ORDER)

    upstreams.orders = orders
    order_input = {"items": [{"productId": "1", "qty": 1}], "customer": CUSTOMER, "idempotencyKey": "k-1"}
    first = (await gql(PLACE, {"i": order_input}, url=mocked_gateway_url))["data"]["placeOrder"]
    again = (await gql(PLACE, {"i": order_input}, url=mocked_gateway_url))["data"]["placeOrder"]
    assert first["errors"] == []
    assert first["accessToken"] == again["accessToken"] == token_7
    assert len(base64.urlsafe_b64decode(token_7 + "=" * (-len(token_7) % 4))) * 8 >= 128
    assert "=" not in token_7
    post = upstreams.calls[0]
    assert json.loads(post.content)["customer"] == {
        "email": "ada@example.com",
        "name": "Ada Lovelace",
        "address": {
            "line1": "12 St James's Sq",
            "line2": None,
            "city": "London",
            "postal_code": "SW1Y 4JH",
            "country": "GB",
        },
    }


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"email": "not-an-email"}, "input.customer.email"),
        ({"email": "a@b"}, "input.customer.email"),
        ({"name": "  "}, "input.customer.name"),
        ({"name": "x" * 201}, "input.customer.name"),
        ({"address": CUSTOMER["address"] | {"city": ""}}, "input.customer.address.city"),
        ({"address": CUSTOMER["address"] | {"postalCode": ""}}, "input.customer.address.postalCode"),
        ({"address": CUSTOMER["address"] | {"country": "GBR"}}, "input.customer.address.country"),
        ({"address": CUSTOMER["address"] | {"line2": "y" * 201}}, "input.customer.address.line2"),
    ],
)
async def test_a_customer_with_a_bad_field_is_refused_next_to_that_field(
    gql: Gql, mocked_gateway_url: str, upstreams: Upstreams, change: dict[str, Any], field: str
) -> None:
    order_input = {"items": [{"productId": "1", "qty": 1}], "customer": CUSTOMER | change}
    payload = (await gql(PLACE, {"i": order_input}, url=mocked_gateway_url))["data"]["placeOrder"]
    assert payload["order"] is None
    assert payload["accessToken"] is None
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [("INVALID_INPUT", field)]
    assert upstreams.calls == []


async def test_orders_validation_of_the_customer_names_the_schema_field(
    gql: Gql, mocked_gateway_url: str, upstreams: Upstreams
) -> None:
    upstreams.orders = lambda r: problem(
        422,
        "validation_error",
        errors=[{"field": "customer.address.postal_code", "message": "too long", "type": "x"}],
    )
    order_input = {"items": [{"productId": "1", "qty": 1}], "customer": CUSTOMER}
    payload = (await gql(PLACE, {"i": order_input}, url=mocked_gateway_url))["data"]["placeOrder"]
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [
        ("INVALID_INPUT", "input.customer.address.postalCode")
    ]


@pytest.mark.parametrize(
    ("answer", "errors"),
    [
        (lambda r: httpx.Response(201, json=PAID | {"refunded_cents": 500}), []),
        (
            lambda r: problem(409, "refund_exceeds_captured", refundable_cents=200),
            [("REFUND_EXCEEDS_CAPTURED", "input.amountCents", 200)],
        ),
        (lambda r: problem(409, "order_not_refundable"), [("ORDER_NOT_REFUNDABLE", None, None)]),
        (
            lambda r: problem(422, "idempotency_key_reused"),
            [("IDEMPOTENCY_KEY_REUSED", "input.idempotencyKey", None)],
        ),
        (lambda r: problem(503, "payments_unavailable"), [("PAYMENT_UNAVAILABLE", None, None)]),
    ],
)
async def test_refund_outcomes_become_payload_errors(
    gql: Gql,
    mocked_gateway_url: str,
    upstreams: Upstreams,
    admin_token: str,
    answer: Handler,
    errors: list[tuple[str, str | None, int | None]],
) -> None:
    upstreams.orders = answer
    variables = {"i": {"orderId": "7", "amountCents": 500, "reason": " damaged ", "idempotencyKey": "r-1"}}
    payload = (await gql(REFUND, variables, token=admin_token, url=mocked_gateway_url))["data"][
        "refundPayment"
    ]
    assert [(e["code"], e["field"], e["available"]) for e in payload["errors"]] == errors
    [call] = upstreams.calls
    assert (call.method, call.url.path) == ("POST", "/orders/7/refunds")
    assert call.headers["Idempotency-Key"] == "r-1"
    assert json.loads(call.content) == {"amount_cents": 500, "reason": "damaged"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amountCents": 0}, "input.amountCents"),
        ({"amountCents": -5}, "input.amountCents"),
        ({"reason": "r" * 501}, "input.reason"),
        ({"idempotencyKey": ""}, "input.idempotencyKey"),
        ({"idempotencyKey": "k" * 256}, "input.idempotencyKey"),
    ],
)
async def test_a_bad_refund_never_reaches_orders(
    gql: Gql,
    mocked_gateway_url: str,
    upstreams: Upstreams,
    admin_token: str,
    change: dict[str, Any],
    field: str,
) -> None:
    refund = {"orderId": "7", "amountCents": 500, "idempotencyKey": "r-1"} | change
    payload = (await gql(REFUND, {"i": refund}, token=admin_token, url=mocked_gateway_url))["data"][
        "refundPayment"
    ]
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [("INVALID_INPUT", field)]
    assert upstreams.calls == []


async def test_an_upstream_failure_is_masked_with_the_request_id(
    mocked_gateway_url: str, upstreams: Upstreams, http: httpx.AsyncClient, token_7: str
) -> None:
    upstreams.orders = lambda request: httpx.Response(500, text="Traceback: secret-dsn=postgres://u:pw@db")
    response = await http.post(
        f"{mocked_gateway_url}/graphql",
        json={
            "query": "query($t: String) { order(id: 7, accessToken: $t) { id } }",
            "variables": {"t": token_7},
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"order": None}
    [error] = body["errors"]
    assert error["message"] == "Internal error."
    assert error["extensions"] == {"code": "INTERNAL", "requestId": response.headers["x-request-id"]}
    assert "secret" not in response.text
    assert "Traceback" not in response.text


async def test_an_unreachable_upstream_is_retryable_and_masked(
    mocked_gateway_url: str, upstreams: Upstreams, gql: Gql
) -> None:
    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    upstreams.inventory = unreachable
    body = await gql("{ products { nodes { id } } }", url=mocked_gateway_url)
    assert error_codes(body) == ["SERVICE_UNAVAILABLE"]
    assert "refused" not in json.dumps(body)


async def test_a_full_page_of_100_asks_once_more_whether_there_is_a_next_one(
    gql: Gql, mocked_gateway_url: str, upstreams: Upstreams
) -> None:
    def inventory(request: httpx.Request) -> httpx.Response:
        after, limit = int(request.url.params.get("after", 0)), int(request.url.params["limit"])
        rows = [{"id": i, "name": "p", "price_cents": 1, "stock_qty": 1} for i in range(after + 1, 151)][
            :limit
        ]
        return httpx.Response(200, json=rows)

    upstreams.inventory = inventory
    page = (
        await gql(
            "{ products(first: 100) { nodes { id } pageInfo { endCursor hasNextPage } } }",
            url=mocked_gateway_url,
        )
    )["data"]["products"]
    assert len(page["nodes"]) == 100
    assert page["pageInfo"] == {"endCursor": "100", "hasNextPage": True}
    last = (
        await gql(
            '{ products(first: 50, after: "100") { nodes { id } pageInfo { endCursor hasNextPage } } }',
            url=mocked_gateway_url,
        )
    )["data"]["products"]
    assert last["pageInfo"] == {"endCursor": "150", "hasNextPage": False}
    assert [c.url.params["limit"] for c in upstreams.calls] == ["100", "1", "51"]


async def test_ready_only_when_upstreams_and_database_answer(
    gateway_url: str, gateway_settings: GatewaySettings, http: httpx.AsyncClient
) -> None:
    ready = await http.get(f"{gateway_url}/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": True, "inventory": True, "orders": True, "payments": True}
    broken = gateway_settings.model_copy(update={"payments_url": "http://127.0.0.1:9"})
    with LiveServer(create_app(broken)) as server:
        not_ready = await http.get(f"{server.url}/readyz")
        alive = await http.get(f"{server.url}/healthz")
    assert not_ready.status_code == 503
    assert not_ready.json()["checks"]["payments"] is False
    assert alive.status_code == 200
