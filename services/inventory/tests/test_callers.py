"""Only the gateway may call inventory: every other caller is refused on every route, and nothing changes."""

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
from inventory.app import create_app
from inventory.settings import InventorySettings

ROUTES = guarded_routes(create_app(InventorySettings()))
# Bodies the write routes would accept from the gateway (the positive control below proves they do).
BODIES = {
    ("POST", "/products"): {"name": "Forged", "price_cents": 1, "stock_qty": 99},
    ("PATCH", "/products/1"): {"price_cents": 1},
    ("PATCH", "/products/1/stock"): {"stock_qty": 0},
}


def test_every_route_is_guarded_and_the_ones_that_matter_are_among_them():
    assert {("PATCH", "/products/1"), ("POST", "/products"), ("GET", "/products")} <= set(ROUTES)


@given(route=st.sampled_from(ROUTES), who=st.sampled_from(forged_credential_names("gateway")))
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
async def test_a_caller_without_the_gateways_credential_is_refused_and_changes_nothing(
    inventory_url, service_tokens, make_product, db, route, who
):
    product_id = await make_product(stock=3)
    method, path = route
    body = BODIES.get(route)
    path = path.replace("/1", f"/{product_id}")
    before = await schema_fingerprint(db, "inventory")
    async with httpx.AsyncClient(base_url=inventory_url, timeout=30) as client:
        response = await client.request(
            method, path, json=body, headers=forged_credentials(service_tokens, "gateway")[who]
        )
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "unauthenticated"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert await schema_fingerprint(db, "inventory") == before


@pytest.mark.parametrize("route", sorted(BODIES))
async def test_the_gateways_credential_is_let_through_and_its_write_lands(
    inventory_url, as_gateway, make_product, db, route
):
    """Positive control: the requests the refusals send, with the gateway's token, change the schema."""
    product_id = await make_product(stock=3)
    method, path = route
    before = await schema_fingerprint(db, "inventory")
    async with httpx.AsyncClient(base_url=inventory_url, headers=as_gateway, timeout=30) as client:
        response = await client.request(method, path.replace("/1", f"/{product_id}"), json=BODIES[route])
    assert response.is_success, response.text
    assert await schema_fingerprint(db, "inventory") != before


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
async def test_health_and_metrics_need_no_credential(inventory_url, path):
    async with httpx.AsyncClient(base_url=inventory_url, timeout=30) as client:
        assert (await client.get(path)).status_code == 200
