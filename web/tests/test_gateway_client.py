"""web.gateway over the generated client: what goes out (one productsByIds for a whole cart, the same
variables as ever) and how each kind of failure comes back (the GatewayError the shop answers with)."""

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from devstack.testing import LiveServer
from web.app import create_app
from web.cart import COOKIE_NAME, Cart, Signer
from web.gateway import (
    GatewayBadRequestError,
    GatewayClient,
    GatewayError,
    GatewayTimeoutError,
    GatewayUnavailableError,
)
from web.settings import WebSettings

URL = "http://gateway.test/graphql"


def product(pid: str) -> dict[str, Any]:
    return {"id": pid, "name": f"Product {pid}", "priceCents": 100 * int(pid), "stockQty": 9}


def test_a_whole_cart_is_one_products_by_ids_in_the_carts_order() -> None:
    bodies: list[dict[str, Any]] = []
    gone = "7"

    async def graphql(request: Request) -> JSONResponse:
        body = await request.json()
        bodies.append(body)
        ids = body["variables"]["ids"]
        return JSONResponse({"data": {"productsByIds": [None if i == gone else product(i) for i in ids]}})

    lines = tuple((str(n), 1) for n in range(25, 0, -1))  # a full cart (web.cart.MAX_LINES)
    with LiveServer(Starlette(routes=[Route("/graphql", graphql, methods=["POST"])])) as upstream:
        shop = create_app(WebSettings(gateway_url=f"{upstream.url}/graphql", secret_key="one-call"))
        with LiveServer(shop) as server:
            response = httpx.get(
                f"{server.url}/cart", cookies={COOKIE_NAME: Signer("one-call").dump_cart(Cart(lines))}
            )

    assert response.status_code == 200
    [body] = bodies
    assert "productsByIds(ids: $ids)" in body["query"]
    assert " product(" not in body["query"]
    assert body["variables"] == {"ids": [pid for pid, _ in lines]}
    assert "Product 25<" in response.text
    assert "Product 1<" in response.text
    assert "Product 7<" not in response.text  # no longer sold: dropped, and the cookie says so
    assert Signer("one-call").load_cart(response.cookies[COOKIE_NAME]).lines == tuple(
        line for line in lines if line[0] != gone
    )


Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler) -> GatewayClient:
    return GatewayClient(httpx.AsyncClient(transport=httpx.MockTransport(handler)), URL)


async def test_place_order_sends_the_input_and_the_request_id_as_before() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        error = {"code": "INSUFFICIENT_STOCK", "field": None, "message": "short", "productId": "3"}
        return httpx.Response(
            200,
            json={
                "data": {
                    "placeOrder": {
                        "order": None,
                        "accessToken": None,
                        "errors": [error | {"requested": 5, "available": 2}],
                    }
                }
            },
        )

    customer = {
        "email": "ada@example.com",
        "name": "Ada",
        "address": {"line1": "1 Sq", "line2": None, "city": "London", "postalCode": "SW1", "country": "GB"},
    }
    result = await client(answer).place_order([("3", 5), ("4", 1)], "k" * 32, customer, request_id="rid-9")
    [request] = seen
    assert request.headers["X-Request-ID"] == "rid-9"
    assert json.loads(request.content)["variables"] == {
        "input": {
            "items": [{"productId": "3", "qty": 5}, {"productId": "4", "qty": 1}],
            "idempotencyKey": "k" * 32,
            "customer": customer,
        }
    }
    assert result.order is None
    [error] = result.errors
    assert (error.code, error.product_id, error.requested, error.available) == (
        "INSUFFICIENT_STOCK",
        "3",
        5,
        2,
    )
    assert str(error.code) == "INSUFFICIENT_STOCK"  # a plain string wherever it is shown or logged


def _graphql_error(code: str, **extensions: Any) -> Handler:
    body = {"data": None, "errors": [{"message": f"{code}!", "extensions": {"code": code, **extensions}}]}
    return lambda request: httpx.Response(200, json=body)


def _raise(exc: Exception) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


@pytest.mark.parametrize(
    ("handler", "error", "status", "retry_after"),
    [
        (_raise(httpx.ReadTimeout("slow")), GatewayTimeoutError, 504, None),
        (_raise(httpx.ConnectError("down")), GatewayUnavailableError, 503, None),
        (lambda r: httpx.Response(503, text="busy"), GatewayUnavailableError, 503, None),
        (lambda r: httpx.Response(500, text="oops"), GatewayError, 502, None),
        (_graphql_error("RATE_LIMITED", retryAfter=7), GatewayUnavailableError, 503, 7),
        (_graphql_error("SERVICE_UNAVAILABLE", retryAfter=3), GatewayUnavailableError, 503, 3),
        (_graphql_error("BAD_REQUEST"), GatewayBadRequestError, 400, None),
        (_graphql_error("INTERNAL"), GatewayError, 502, None),
        (lambda r: httpx.Response(200, json={"data": None}), GatewayError, 502, None),
    ],
)
async def test_every_failure_is_the_gateway_error_the_shop_answers_with(
    handler: Handler, error: type[GatewayError], status: int, retry_after: int | None
) -> None:
    with pytest.raises(GatewayError) as raised:
        await client(handler).product("1")
    assert type(raised.value) is error
    assert raised.value.status == status
    assert raised.value.retry_after == retry_after
