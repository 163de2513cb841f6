import os
import subprocess

import asyncpg
import pytest

from lockstock_db import database
from servicekit.db import plain_url


async def connect_as(service_database_urls, service):
    return await asyncpg.connect(plain_url(service_database_urls[service]))


async def test_orders_may_lock_and_take_stock_but_never_touch_a_name_or_price(
    service_database_urls, make_product
):
    product = await make_product(stock=5, price_cents=100)
    conn = await connect_as(service_database_urls, "orders")
    try:
        async with conn.transaction():
            await conn.execute("SELECT 1 FROM inventory.products WHERE id = $1 FOR UPDATE", product)
            await conn.execute(
                "UPDATE inventory.products SET stock_qty = stock_qty - 1 WHERE id = $1", product
            )
        for forbidden in (
            "UPDATE inventory.products SET price_cents = 1 WHERE id = $1",
            "UPDATE inventory.products SET name = 'hacked' WHERE id = $1",
            "DELETE FROM inventory.products WHERE id = $1",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(forbidden, product)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(
                "INSERT INTO inventory.products (name, price_cents, stock_qty) VALUES ('x', 1, 1)"
            )
    finally:
        await conn.close()


async def test_inventory_cannot_read_or_write_orders(service_database_urls):
    conn = await connect_as(service_database_urls, "inventory")
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM orders.orders LIMIT 1")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM inventory.products")
    finally:
        await conn.close()


async def test_the_database_itself_refuses_negative_stock(db, make_product):
    product = await make_product(stock=1)
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute("UPDATE inventory.products SET stock_qty = stock_qty - 2 WHERE id = $1", product)


def test_seeding_twice_adds_nothing_the_second_time(migrated_admin_url):
    import asyncio

    async def mugs() -> int:
        conn = await asyncpg.connect(plain_url(migrated_admin_url))
        try:
            return int(await conn.fetchval("SELECT count(*) FROM inventory.products WHERE name = 'Mug'"))
        finally:
            await conn.close()

    database.seed(migrated_admin_url)
    assert asyncio.run(mugs()) == 1
    database.seed(migrated_admin_url)
    assert asyncio.run(mugs()) == 1


def test_the_production_cli_wants_a_database_url_and_says_so():
    """lockstock-db is what the images run; it never starts a server of its own."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "TEST_DATABASE_URL"}}
    done = subprocess.run(["lockstock-db", "migrate"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "set DATABASE_URL" in done.stderr
