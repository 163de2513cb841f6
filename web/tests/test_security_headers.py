"""Every answer of the shop carries the security headers: pages, redirects, the error pages middleware
answers itself (413, a refused form), the gateway-down page; the static files are the only cacheable ones."""

from collections.abc import Iterator

import httpx
import pytest

from devstack.embedded import free_port
from devstack.testing import LiveServer
from web.app import create_app
from web.settings import WebSettings

EXPECTED = {
    "cache-control": "no-store",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "content-security-policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
}


@pytest.fixture(scope="module")
def shop() -> Iterator[httpx.Client]:
    settings = WebSettings(gateway_url=f"http://127.0.0.1:{free_port()}/graphql", secret_key="headers-test")
    with LiveServer(create_app(settings)) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def assert_headers(response: httpx.Response) -> None:
    assert {name: response.headers.get(name) for name in EXPECTED} == EXPECTED, response.status_code


def test_a_redirect_carries_the_security_headers(shop: httpx.Client) -> None:
    response = shop.get("/checkout")  # an empty cart: back to the cart page
    assert response.status_code == 303
    assert response.headers["location"] == "/cart"
    assert_headers(response)


def test_pages_and_error_pages_carry_them(shop: httpx.Client) -> None:
    cart = shop.get("/cart")
    assert cart.status_code == 200
    assert_headers(cart)
    assert_headers(shop.get("/no-such-page"))  # 404
    assert_headers(shop.get("/"))  # the gateway is down: 503
    assert_headers(shop.post("/cart/add", data={"product_id": "1", "qty": "1"}))  # no CSRF token: 403
    too_large = shop.post("/cart/add", data={"qty": "1" * 20_000})
    assert too_large.status_code == 413
    assert_headers(too_large)


def test_static_files_may_be_cached(shop: httpx.Client) -> None:
    response = shop.get("/static/shop.css")
    assert response.status_code == 200
    assert "cache-control" not in response.headers
    assert response.headers["x-content-type-options"] == "nosniff"
