"""Orders under hostile bodies and a database that is down: 4xx with a code or 503 with Retry-After, never
a 500, nothing written by a refusal."""

import asyncio
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from devstack.hostile import fuzz_hostile_json
from devstack.testing import LiveServer, closed_port_database_url, query_row
from orders.app import create_app
from orders.settings import OrdersSettings

# Rows a refusal must not add. A final refusal (out of stock) is stored under its key by
# design; a claim left in flight would be a leak.
SNAPSHOT = (
    "SELECT (SELECT count(*) FROM orders.orders), (SELECT count(*) FROM orders.order_items),"
    " (SELECT coalesce(sum(stock_qty), 0) FROM inventory.products),"
    " (SELECT count(*) FROM orders.idempotency_keys WHERE state = 'in_flight')"
)


async def test_hostile_order_bodies_are_refused_and_write_nothing(
    orders_url: str, migrated_admin_url: str, make_product, as_gateway: dict[str, str]
) -> None:
    product_id = await make_product(stock=100_000)
    keyed = iter(range(10**9))

    def headers() -> dict[str, str]:
        # Every other request with a fresh key, so the idempotent path meets the same bodies.
        key = {"Idempotency-Key": f"hostile-{uuid.uuid4()}"} if next(keyed) % 2 else {}
        return as_gateway | key

    await asyncio.to_thread(
        fuzz_hostile_json,
        orders_url,
        "POST",
        "/orders",
        {"items": [{"productId": product_id, "qty": 1}]},
        snapshot=lambda: query_row(migrated_admin_url, SNAPSHOT),
        headers=headers,
    )


@pytest.fixture(scope="module")
def down_orders_url(
    service_database_urls: dict[str, str],
    payments_url: str,
    credential_settings: Callable[[str], dict[str, Any]],
) -> Iterator[str]:
    settings = OrdersSettings(
        database_url=closed_port_database_url(service_database_urls["orders"]),
        payments_url=payments_url,
        **credential_settings("orders"),
    )
    with LiveServer(create_app(settings)) as server:
        yield server.url


@pytest.mark.parametrize(
    ("method", "path", "body", "key"),
    [
        ("POST", "/orders", {"items": [{"productId": 1, "qty": 1}]}, None),
        ("POST", "/orders", {"items": [{"productId": 1, "qty": 1}]}, "down-1"),
        ("GET", "/orders/1", None, None),
        ("GET", "/orders", None, None),
        ("POST", "/orders/1/cancel", None, None),
        ("POST", "/orders/1/capture", None, None),
        ("POST", "/orders/1/authorize", {"card_number": "4242 4242 4242 4242"}, None),
        ("POST", "/orders/1/refunds", {"amount_cents": 100, "reason": "r"}, "down-2"),
    ],
)
def test_with_the_database_down_every_route_is_503_database_unavailable(
    down_orders_url: str, method: str, path: str, body: object, key: str | None, as_gateway: dict[str, str]
) -> None:
    headers = as_gateway | ({"Idempotency-Key": key} if key else {})
    response = httpx.request(method, f"{down_orders_url}{path}", json=body, headers=headers, timeout=30)
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "1"
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "database_unavailable"
