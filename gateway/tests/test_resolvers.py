"""Resolvers against stand-in upstreams (httpx.MockTransport): how each upstream answer becomes a payload or
an error, and what never leaks."""

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from gateway.settings import GatewaySettings
from servicekit.testing import LiveServer

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
    "payment_attempts": 0,
    "charge_id": None,
    "payment_failure_code": None,
    "created_at": "2026-01-01T00:00:00Z",
    "updated_at": "2026-01-01T00:00:00Z",
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
    """Stand-ins for inventory and orders; tests set the ``orders`` / ``inventory`` handlers."""

    def __init__(self) -> None:
        self.calls: list[httpx.Request] = []
        self.orders: Handler = lambda request: httpx.Response(404)
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
    transports = {"inventory": upstreams.transport("inventory"), "orders": upstreams.transport("orders")}
    with LiveServer(create_app(gateway_settings, transports=transports)) as server:
        yield server.url


@pytest.fixture(autouse=True)
def fresh(upstreams: Upstreams) -> None:
    upstreams.calls.clear()
    upstreams.orders = lambda request: httpx.Response(404)
    upstreams.inventory = upstreams.default_inventory


PLACE = """mutation($i: PlaceOrderInput!) { placeOrder(input: $i) {
  order { id totalCents items { qty product { id name } } }
  errors { code field message productId requested available } } }"""
CAPTURE = """mutation { capturePayment(orderId: "7") { order { id status paymentFailureCode }
  errors { code message } } }"""


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


async def test_the_request_id_travels_to_every_upstream(
    mocked_gateway_url: str, upstreams: Upstreams, http: httpx.AsyncClient
) -> None:
    upstreams.orders = lambda request: httpx.Response(200, json=ORDER)
    response = await http.post(
        f"{mocked_gateway_url}/graphql",
        json={"query": '{ order(id: "7") { items { product { name } } } }'},
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
        (lambda r: httpx.Response(200, json=ORDER | {"status": "PAID", "charge_id": 3}), "PAID", []),
        (
            lambda r: httpx.Response(
                200, json=ORDER | {"status": "PAYMENT_FAILED", "payment_failure_code": "insufficient_funds"}
            ),
            "PAYMENT_FAILED",
            ["PAYMENT_DECLINED"],
        ),
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
    if codes == ["PAYMENT_DECLINED"]:
        assert "insufficient_funds" in payload["errors"][0]["message"]
    assert [(c.method, c.url.path) for c in upstreams.calls] == [("POST", "/orders/7/capture")]


async def test_an_upstream_failure_is_masked_with_the_request_id(
    mocked_gateway_url: str, upstreams: Upstreams, http: httpx.AsyncClient
) -> None:
    upstreams.orders = lambda request: httpx.Response(500, text="Traceback: secret-dsn=postgres://u:pw@db")
    response = await http.post(f"{mocked_gateway_url}/graphql", json={"query": '{ order(id: "7") { id } }'})
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
