"""Orders moves money, the gateway and orders read it: every other caller is refused on every route (the
gateway's token on a write with 403), and nothing changes."""

import uuid

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devstack.testing import (
    forged_credential_names,
    forged_credentials,
    guarded_routes,
    schema_fingerprint,
)
from payments.app import create_app
from payments.settings import PaymentsSettings

ROUTES = guarded_routes(create_app(PaymentsSettings()))
WRITES = [route for route in ROUTES if route[0] != "GET"]
READS = [route for route in ROUTES if route[0] == "GET"]
# Everything that must not pass for orders' credential, except the gateway's own (403 on writes, see below).
UNKNOWN = [name for name in forged_credential_names("orders") if name != "gateway's token"]


def body_for(route: tuple[str, str], order_id: int) -> dict[str, object] | None:
    """What orders would send (the positive control proves these are accepted)."""
    return {
        ("POST", "/payments"): {"order_id": order_id, "amount_cents": 700, "card_number": "4242424242424242"},
        ("POST", "/payments/1/refunds"): {"amount_cents": 1},
    }.get(route, {} if route[0] == "POST" else None)


async def send(url: str, route: tuple[str, str], payment: dict, headers: dict[str, str]) -> httpx.Response:
    method, path = route
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        return await client.request(
            method,
            path.replace("/1", f"/{payment['payment_id']}"),
            json=body_for(route, payment["order_id"]),
            params={"order_id": payment["order_id"]} if route == ("GET", "/payments") else None,
            headers={**headers, "Idempotency-Key": f"callers-{uuid.uuid4()}"},
        )


@pytest.fixture
async def payment(api) -> dict:
    """An authorized payment, made by orders: one every route can act on."""
    return await api.authorized(700)


def test_every_route_is_guarded_and_the_ones_that_matter_are_among_them():
    assert {("POST", "/payments"), ("POST", "/payments/1/refunds"), ("GET", "/payments")} <= set(ROUTES)


@given(route=st.sampled_from(ROUTES), who=st.sampled_from(UNKNOWN))
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
async def test_a_caller_without_a_known_credential_is_refused_and_changes_nothing(
    payments_url, service_tokens, payment, db, route, who
):
    before = await schema_fingerprint(db, "payments")
    response = await send(payments_url, route, payment, forged_credentials(service_tokens, "orders")[who])
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "unauthenticated"
    assert await schema_fingerprint(db, "payments") == before


@pytest.mark.parametrize("route", WRITES)
async def test_the_gateway_cannot_move_money(payments_url, as_gateway, payment, db, route):
    before = await schema_fingerprint(db, "payments")
    response = await send(payments_url, route, payment, as_gateway)
    assert response.status_code == 403, response.text
    assert response.json()["code"] == "caller_not_allowed"
    assert await schema_fingerprint(db, "payments") == before


@pytest.mark.parametrize("route", [r for r in READS if r[1].startswith("/payments")])
async def test_the_gateway_and_orders_can_read(payments_url, as_gateway, as_orders, payment, route):
    for headers in (as_gateway, as_orders):
        response = await send(payments_url, route, payment, headers)
        assert response.status_code == 200, response.text


@pytest.mark.parametrize("route", WRITES)
async def test_orders_credential_is_let_through_and_its_write_lands(
    payments_url, as_orders, api, payment, db, route
):
    """Positive control: the requests the refusals send, with orders' token, change the books."""
    if route == ("POST", "/payments/1/refunds"):
        payment = await api.captured(700)
    before = await schema_fingerprint(db, "payments")
    response = await send(payments_url, route, payment, as_orders)
    assert response.is_success, response.text
    assert await schema_fingerprint(db, "payments") != before
