"""The shop's forms as a hostile client posts them, over real HTTP against the live system: a 4xx page (or
503 with Retry-After), never a 500, and nothing ordered by a refusal; bodies over the cap are refused unread;
a gateway answering SERVICE_UNAVAILABLE shows the 503 page."""

from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from devstack.hostile import hostile_forms
from devstack.testing import LiveServer, query_row
from web.app import create_app
from web.settings import WebSettings

SNAPSHOT = (
    "SELECT (SELECT count(*) FROM orders.orders),"
    " (SELECT coalesce(sum(stock_qty), 0) FROM inventory.products)"
)


@pytest.fixture
def shopper(web_url: str) -> Iterator[httpx.Client]:
    """A browser's first visit: the empty cart page hands out the CSRF cookie."""
    with httpx.Client(base_url=web_url, timeout=30) as client:
        assert client.get("/cart").status_code == 200
        yield client


def assert_page(response: httpx.Response) -> None:
    assert response.headers["content-type"].startswith("text/html")
    assert "Traceback" not in response.text


def test_checkout_as_multipart_without_a_boundary_is_a_400_page_and_orders_nothing(
    shopper: httpx.Client, migrated_admin_url: str
) -> None:
    before = query_row(migrated_admin_url, SNAPSHOT)
    token = shopper.cookies["csrftoken"]
    for content_type in ("multipart/form-data", "multipart/form-data;boundary=x"):
        response = shopper.post(
            "/checkout", content=f"csrftoken={token}".encode(), headers={"content-type": content_type}
        )
        assert response.status_code == 400, (content_type, response.text[:300])
        assert_page(response)
        assert "could not be read" in response.text
    assert query_row(migrated_admin_url, SNAPSHOT) == before


def test_a_form_that_is_not_utf8_is_a_400_page(shopper: httpx.Client) -> None:
    response = shopper.post(
        "/cart/add",
        content=b"csrftoken=\xff&product_id=1&qty=1",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400
    assert_page(response)


def test_a_body_over_the_cap_is_refused_unread(shopper: httpx.Client) -> None:
    token = shopper.cookies["csrftoken"]
    declared = shopper.post("/cart/add", data={"csrftoken": token, "product_id": "1", "qty": "1" * 20_000})
    assert declared.status_code == 413
    assert_page(declared)

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams, refused at the cap
        yield f"csrftoken={token}&product_id=1&qty=".encode()
        for _ in range(40):
            yield b"1" * 1_000

    streamed = shopper.post(
        "/cart/add", content=chunks(), headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert streamed.status_code == 413
    assert "larger than this shop accepts" in streamed.text


@pytest.mark.parametrize(
    ("path", "valid"),
    [
        ("/cart/add", {"product_id": "1", "qty": "1"}),
        ("/cart/update", {"product_id": "1", "qty": "2"}),
        ("/cart/remove", {"product_id": "1"}),
        ("/checkout", {"idempotency_key": "a" * 32, "checkout_token": "forged"}),
    ],
)
def test_hostile_shop_forms_get_a_4xx_page_and_order_nothing(
    shopper: httpx.Client, migrated_admin_url: str, path: str, valid: dict[str, str]
) -> None:
    token = shopper.cookies["csrftoken"]

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(request=hostile_forms({"csrftoken": token, **valid}, keep=frozenset({"csrftoken"})))
    def run(request: tuple[str, bytes]) -> None:
        content_type, body = request
        before = query_row(migrated_admin_url, SNAPSHOT)
        response = shopper.post(path, content=body, headers={"content-type": content_type})
        if response.status_code != 303:  # a redirect: a cart form that was valid after all
            assert_page(response)
            if response.status_code == 503:
                assert response.headers.get("retry-after")
            else:
                assert 400 <= response.status_code < 500, response.text[:300]
        assert query_row(migrated_admin_url, SNAPSHOT) == before

    run()


async def _unavailable_gateway(request: Request) -> JSONResponse:
    error = {"message": "busy", "extensions": {"code": "SERVICE_UNAVAILABLE", "retryAfter": 7}}
    return JSONResponse({"data": None, "errors": [error]})


def test_a_gateway_answering_service_unavailable_shows_the_503_page() -> None:
    with LiveServer(Starlette(routes=[Route("/graphql", _unavailable_gateway, methods=["POST"])])) as gateway:
        settings = WebSettings(gateway_url=f"{gateway.url}/graphql", secret_key="hostile-web")
        with LiveServer(create_app(settings)) as shop:
            response = httpx.get(f"{shop.url}/", timeout=30)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "7"
    assert_page(response)
    assert "temporarily unavailable" in response.text
