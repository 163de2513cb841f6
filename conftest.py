"""Fixtures every package's tests share: one migrated PostgreSQL database per run, and live services.

Each service runs as its own least-privilege role, served over real HTTP on a loopback port.
"""

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import asyncpg
import pytest

from inventory.app import create_app as create_inventory_app
from inventory.settings import InventorySettings
from lockstock_db import database
from orders.app import create_app as create_orders_app
from orders.settings import OrdersSettings
from servicekit.db import plain_url
from servicekit.testing import LiveServer


@pytest.fixture(scope="session")
def migrated_admin_url(postgres_admin_url: str) -> str:
    database.migrate(postgres_admin_url)
    return postgres_admin_url


@pytest.fixture(scope="session")
def service_database_urls(migrated_admin_url: str) -> dict[str, str]:
    passwords = {role: f"test-{role}" for role in database.SERVICE_ROLES.values()}
    database.apply_role_passwords(migrated_admin_url, passwords)
    return database.service_database_urls(migrated_admin_url, passwords)


@pytest.fixture(scope="session")
def inventory_url(service_database_urls: dict[str, str]) -> Iterator[str]:
    settings = InventorySettings(database_url=service_database_urls["inventory"])
    with LiveServer(create_inventory_app(settings)) as server:
        yield server.url


@pytest.fixture(scope="session")
def orders_url(service_database_urls: dict[str, str]) -> Iterator[str]:
    settings = OrdersSettings(database_url=service_database_urls["orders"], db_pool_size=20)
    with LiveServer(create_orders_app(settings)) as server:
        yield server.url


@pytest.fixture
async def db(migrated_admin_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A superuser connection for arranging and inspecting state directly."""
    conn = await asyncpg.connect(plain_url(migrated_admin_url))
    try:
        yield conn
    finally:
        await conn.close()


MakeProduct = Callable[..., Awaitable[int]]


@pytest.fixture
def make_product(db: asyncpg.Connection) -> MakeProduct:
    """Insert a product of this test's own (tests never share rows), returning its id."""

    async def make(stock: int = 10, price_cents: int = 1_000, name: str = "Test product") -> int:
        product_id: int = await db.fetchval(
            "INSERT INTO inventory.products (name, price_cents, stock_qty) VALUES ($1, $2, $3) RETURNING id",
            name,
            price_cents,
            stock,
        )
        return product_id

    return make
