"""Inventory under hostile bodies and a database that is down or busy: 4xx with a code or 503 with
Retry-After, never a 500, nothing written by a refusal."""

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from devstack.hostile import assert_refused_well, fuzz_hostile_json
from devstack.testing import LiveServer, closed_port_database_url, query_row
from inventory.app import create_app
from inventory.settings import InventorySettings

SNAPSHOT = (
    "SELECT count(*), coalesce(sum(stock_qty), 0), coalesce(sum(price_cents), 0),"
    " coalesce(sum(low_stock_threshold), 0), count(low_stock_threshold) FROM inventory.products"
)


def test_hostile_product_bodies_are_refused_and_write_nothing(
    inventory_url: str, migrated_admin_url: str, as_gateway: dict[str, str]
) -> None:
    fuzz_hostile_json(
        inventory_url,
        "POST",
        "/products",
        {"name": "Hostile cup", "price_cents": 800, "stock_qty": 12},
        snapshot=lambda: query_row(migrated_admin_url, SNAPSHOT),
        headers=lambda: as_gateway,
    )


async def test_hostile_price_and_stock_changes_are_refused_and_write_nothing(
    inventory_url: str, migrated_admin_url: str, make_product, as_gateway: dict[str, str]
) -> None:
    product_id = await make_product(stock=1_000, price_cents=1_000)

    def fuzz() -> None:
        for path, valid in (
            (f"/products/{product_id}", {"price_cents": 1_300}),
            (f"/products/{product_id}", {"low_stock_threshold": 5}),
            (f"/products/{product_id}/stock", {"delta": -1}),
        ):
            fuzz_hostile_json(
                inventory_url,
                "PATCH",
                path,
                valid,
                snapshot=lambda: query_row(migrated_admin_url, SNAPSHOT),
                max_examples=50,
                headers=lambda: as_gateway,
            )

    await asyncio.to_thread(fuzz)


@pytest.fixture(scope="module")
def down_inventory_url(
    service_database_urls: dict[str, str], credential_settings: Callable[[str], dict[str, Any]]
) -> Iterator[str]:
    settings = InventorySettings(
        database_url=closed_port_database_url(service_database_urls["inventory"]),
        **credential_settings("inventory"),
    )
    with LiveServer(create_app(settings)) as server:
        yield server.url


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/products", None),
        ("GET", "/products/1", None),
        ("GET", "/products?ids=1,2", None),
        ("POST", "/products", {"name": "x", "price_cents": 1, "stock_qty": 1}),
        ("PATCH", "/products/1", {"price_cents": 2}),
        ("PATCH", "/products/1/stock", {"delta": 1}),
    ],
)
def test_with_the_database_down_every_route_is_503_database_unavailable(
    down_inventory_url: str, method: str, path: str, body: object, as_gateway: dict[str, str]
) -> None:
    response = httpx.request(method, f"{down_inventory_url}{path}", json=body, headers=as_gateway, timeout=30)
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "1"
    assert response.json()["code"] == "database_unavailable"
    assert_refused_well(response)


async def test_a_row_lock_held_past_lock_timeout_is_503_database_busy(
    service_database_urls: dict[str, str],
    db: asyncpg.Connection,
    make_product,
    credential_settings: Callable[[str], dict[str, Any]],
    as_gateway: dict[str, str],
) -> None:
    product_id = await make_product(stock=5)
    settings = InventorySettings(
        database_url=service_database_urls["inventory"],
        db_lock_timeout_ms=100,
        **credential_settings("inventory"),
    )
    with LiveServer(create_app(settings)) as server:
        async with db.transaction():
            await db.execute("SELECT 1 FROM inventory.products WHERE id = $1 FOR UPDATE", product_id)
            async with httpx.AsyncClient(headers=as_gateway, timeout=30) as client:
                response = await client.patch(f"{server.url}/products/{product_id}/stock", json={"delta": 1})
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "database_busy"
    assert response.headers["retry-after"] == "1"
    assert await db.fetchval("SELECT stock_qty FROM inventory.products WHERE id = $1", product_id) == 5


async def test_connections_the_server_ended_are_503_once_then_served_again(
    service_database_urls: dict[str, str],
    db: asyncpg.Connection,
    make_product,
    credential_settings: Callable[[str], dict[str, Any]],
    as_gateway: dict[str, str],
) -> None:
    product_id = await make_product()
    settings = InventorySettings(
        database_url=service_database_urls["inventory"],
        service_name="inventory-ended",
        **credential_settings("inventory"),
    )
    with LiveServer(create_app(settings)) as server:
        async with httpx.AsyncClient(base_url=server.url, headers=as_gateway, timeout=30) as client:
            assert (await client.get(f"/products/{product_id}")).status_code == 200
            ended = await db.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = 'inventory-ended'"
            )
            assert ended >= 1  # the positive control: a pooled connection really was cut
            answers = [await client.get(f"/products/{product_id}") for _ in range(3)]
    assert {a.status_code for a in answers} <= {200, 503}
    assert answers[0].status_code == 503
    assert answers[0].json()["code"] == "database_unavailable"
    assert answers[-1].status_code == 200
