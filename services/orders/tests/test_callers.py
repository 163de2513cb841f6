"""Only the gateway may call orders: every other caller is refused on every route, and nothing changes in
orders, inventory or payments."""

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devstack.testing import (
    forged_credential_names,
    forged_credentials,
    guarded_routes,
)
from orders.app import create_app
from orders.settings import OrdersSettings

ROUTES = guarded_routes(create_app(OrdersSettings()))
CARD = "4242424242424242"


def body_for(route: tuple[str, str], product_id: int) -> dict[str, object] | None:
    """What the gateway would send (the positive control proves these are accepted)."""
    return {
        ("POST", "/orders"): {"items": [{"productId": product_id, "qty": 1}]},
        ("POST", "/orders/1/authorize"): {"card_number": CARD},
        ("POST", "/orders/1/refunds"): {"amount_cents": 1},
    }.get(route, {} if route[0] == "POST" else None)


async def fingerprint(db, order_id: int, product_id: int) -> tuple[object, ...]:
    """This test's order, its stock and its payments, and whether any order or payment was added. (Not the
    whole schemas: the session's orders app sweeps and reconciles other tests' orders meanwhile.)"""
    return (
        await db.fetchrow("SELECT * FROM orders.orders WHERE id = $1", order_id),
        await db.fetch("SELECT * FROM orders.refunds WHERE order_id = $1 ORDER BY id", order_id),
        await db.fetchrow("SELECT * FROM inventory.products WHERE id = $1", product_id),
        await db.fetch("SELECT * FROM payments.payments WHERE order_id = $1 ORDER BY id", order_id),
        await db.fetchval("SELECT max(id) FROM orders.orders"),
        await db.fetchval("SELECT max(id) FROM payments.payments"),
    )


@pytest.fixture
async def authorized_order(orders_url, as_gateway, make_product) -> tuple[int, int]:
    """(order id, product id) of an order the gateway placed and authorized: one every route can act on."""
    product_id = await make_product(stock=5, price_cents=900)
    async with httpx.AsyncClient(base_url=orders_url, headers=as_gateway, timeout=30) as client:
        placed = await client.post("/orders", json=body_for(("POST", "/orders"), product_id))
        order_id = placed.json()["orderId"]
        authorized = await client.post(f"/orders/{order_id}/authorize", json={"card_number": CARD})
    assert authorized.status_code == 200, authorized.text
    return order_id, product_id


def test_every_route_is_guarded_and_the_ones_that_matter_are_among_them():
    assert {
        ("POST", "/orders"),
        ("POST", "/orders/1/capture"),
        ("POST", "/orders/1/cancel"),
        ("GET", "/orders"),
    } <= set(ROUTES)


@given(route=st.sampled_from(ROUTES), who=st.sampled_from(forged_credential_names("gateway")))
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
async def test_a_caller_without_the_gateways_credential_is_refused_and_changes_nothing(
    orders_url, service_tokens, authorized_order, db, route, who
):
    order_id, product_id = authorized_order
    method, path = route
    before = await fingerprint(db, order_id, product_id)
    async with httpx.AsyncClient(base_url=orders_url, timeout=30) as client:
        response = await client.request(
            method,
            path.replace("/1", f"/{order_id}"),
            json=body_for(route, product_id),
            headers=forged_credentials(service_tokens, "gateway")[who],
        )
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "unauthenticated"
    assert await fingerprint(db, order_id, product_id) == before


@pytest.mark.parametrize(
    "route", [("POST", "/orders"), ("POST", "/orders/1/capture"), ("POST", "/orders/1/cancel")]
)
async def test_the_gateways_credential_is_let_through_and_its_write_lands(
    orders_url, as_gateway, authorized_order, db, route
):
    """Positive control: the requests the refusals send, with the gateway's token, change the books."""
    order_id, product_id = authorized_order
    method, path = route
    before = await fingerprint(db, order_id, product_id)
    async with httpx.AsyncClient(base_url=orders_url, headers=as_gateway, timeout=30) as client:
        response = await client.request(
            method, path.replace("/1", f"/{order_id}"), json=body_for(route, product_id)
        )
    assert response.is_success, response.text
    assert await fingerprint(db, order_id, product_id) != before
