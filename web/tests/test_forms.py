"""The shop's refusals over real HTTP, without a gateway behind it: CSRF, bad form input, tampered cookies,
and the friendly pages shown when the gateway is down or too slow."""

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from devstack.embedded import free_port
from devstack.testing import LiveServer
from web.app import create_app
from web.settings import WebSettings


async def _slow_graphql(request: Request) -> JSONResponse:
    await asyncio.sleep(3)
    return JSONResponse({"data": None})


@pytest.fixture(scope="module")
def shop_without_gateway() -> Iterator[str]:
    """The shop pointed at a port where nothing listens."""
    settings = WebSettings(gateway_url=f"http://127.0.0.1:{free_port()}/graphql", secret_key="forms-test")
    with LiveServer(create_app(settings)) as server:
        yield server.url


@pytest.fixture(scope="module")
def shop_with_slow_gateway() -> Iterator[str]:
    with LiveServer(Starlette(routes=[Route("/graphql", _slow_graphql, methods=["POST"])])) as slow:
        settings = WebSettings(
            gateway_url=f"{slow.url}/graphql", secret_key="forms-test", gateway_timeout_s=0.3
        )
        with LiveServer(create_app(settings)) as server:
            yield server.url


@pytest.fixture
async def client(shop_without_gateway: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=shop_without_gateway, timeout=10) as http:
        yield http


async def csrf_token(client: httpx.AsyncClient) -> str:
    """A browser's first visit: the empty cart page needs no gateway and hands out the CSRF cookie."""
    response = await client.get("/cart")
    assert response.status_code == 200
    return client.cookies["csrftoken"]


def assert_friendly_page(response: httpx.Response) -> None:
    assert response.headers["content-type"].startswith("text/html")
    assert "Traceback" not in response.text
    assert "<h1" in response.text


async def test_a_form_posted_without_a_csrf_token_is_refused(client: httpx.AsyncClient) -> None:
    for path in ("/cart/add", "/cart/update", "/cart/remove", "/checkout"):
        # A forged cross-site form: no cookies, no token.
        async with httpx.AsyncClient(base_url=str(client.base_url)) as stranger:
            response = await stranger.post(path, data={"product_id": "1", "qty": "1"})
        assert response.status_code == 403, path
        assert_friendly_page(response)
        assert "did not come from this shop" in response.text


async def test_a_form_with_a_token_that_does_not_match_its_cookie_is_refused(
    client: httpx.AsyncClient,
) -> None:
    await csrf_token(client)
    async with httpx.AsyncClient(base_url=str(client.base_url)) as other:
        await other.get("/cart")
        foreign_token = other.cookies["csrftoken"]
    response = await client.post(
        "/cart/update", data={"csrftoken": foreign_token, "product_id": "1", "qty": "2"}
    )
    assert response.status_code == 403
    response = await client.post("/cart/update", data={"product_id": "1", "qty": "2"})
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("path", "fields", "message"),
    [
        ("/cart/add", {"product_id": "1", "qty": "abc"}, "whole number"),
        ("/cart/add", {"product_id": "1", "qty": "-1"}, "whole number"),
        ("/cart/add", {"product_id": "1", "qty": "100000000000000000000"}, "whole number"),
        ("/cart/add", {"product_id": "1"}, "Please enter a quantity"),
        ("/cart/add", {"product_id": "1", "qty": "0"}, "whole number"),
        ("/cart/add", {"product_id": "x", "qty": "1"}, "does not exist"),
        ("/cart/add", {"qty": "1"}, "does not exist"),
        ("/cart/update", {"product_id": "1", "qty": "1.5"}, "whole number"),
        ("/cart/update", {"product_id": "1", "qty": "-1"}, "whole number"),
        ("/cart/remove", {"product_id": "-3"}, "does not exist"),
    ],
)
async def test_bad_form_input_gets_a_clear_4xx_page(
    client: httpx.AsyncClient, path: str, fields: dict[str, str], message: str
) -> None:
    token = await csrf_token(client)
    response = await client.post(path, data={"csrftoken": token, **fields})
    assert response.status_code == 422
    assert_friendly_page(response)
    assert message in response.text
    assert "cart=" not in response.headers.get("set-cookie", "")


async def test_a_forged_checkout_form_is_refused_and_orders_nothing(client: httpx.AsyncClient) -> None:
    token = await csrf_token(client)
    response = await client.post(
        "/checkout", data={"csrftoken": token, "idempotency_key": "a" * 32, "checkout_token": "forged"}
    )
    assert response.status_code == 400
    assert "not valid any more" in response.text


async def test_a_tampered_cart_cookie_is_an_empty_cart_not_an_error(client: httpx.AsyncClient) -> None:
    for cookie in ("W1siMSIsIDk5XV0.forged", "garbage", "x" * 3000, '"quoted"'):
        client.cookies.set("cart", cookie)
        response = await client.get("/cart")
        assert response.status_code == 200
        assert "Your cart is empty" in response.text


async def test_the_gateway_down_shows_a_friendly_page_with_the_request_id(client: httpx.AsyncClient) -> None:
    for path in ("/", "/products/1"):
        response = await client.get(path, headers={"X-Request-ID": "shopper-req-123"})
        assert response.status_code == 503
        assert_friendly_page(response)
        assert "temporarily unavailable" in response.text
        assert "shopper-req-123" in response.text
        assert response.headers["x-request-id"] == "shopper-req-123"


async def test_a_slow_gateway_shows_a_timeout_page_with_the_request_id(shop_with_slow_gateway: str) -> None:
    async with httpx.AsyncClient(base_url=shop_with_slow_gateway, timeout=10) as http:
        response = await http.get("/")
    assert response.status_code == 504
    assert_friendly_page(response)
    assert response.headers["x-request-id"] in response.text


async def test_unknown_pages_and_bad_cursors_are_friendly_4xx(client: httpx.AsyncClient) -> None:
    response = await client.get("/no-such-page")
    assert response.status_code == 404
    assert_friendly_page(response)
    response = await client.get("/", params={"after": "<script>"})
    assert response.status_code == 400
    assert "<script>" not in response.text
    response = await client.get("/products/abc")
    assert response.status_code == 404
