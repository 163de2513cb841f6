"""Fault test: PostgreSQL restarts while orders are being placed over real HTTP.

A PostgreSQL of its own (so the run's shared server is never disturbed) is stopped and started again in the
middle of a bounded stream of orders. Every answer is a 201 or a 503 with Retry-After (never a 500), every
acknowledged order is there afterwards, and stock is conserved: starting stock = stock left + units in the
orders that exist.
"""

import asyncio
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from devstack.embedded import EmbeddedPostgres, free_port
from devstack.testing import LiveServer, wait_until
from lockstock_db import database
from orders.app import create_app
from orders.settings import OrdersSettings

STOCK = 100_000
PRODUCTS = 3
ORDERS = 400  # the bound: the loop ends after this many answers, restart or not
WORKERS = 4


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[EmbeddedPostgres]:
    data_dir = Path(tempfile.mkdtemp(prefix="lsfault-"))
    server = EmbeddedPostgres(data_dir, free_port(), durable=False, max_connections=50)
    try:
        server.start()
        yield server
    finally:
        server.destroy()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def orders_database(own_postgres: EmbeddedPostgres) -> tuple[str, str]:
    """(superuser URL, orders_svc URL) of a migrated database on that server."""

    async def create() -> None:
        conn = await asyncpg.connect(own_postgres.admin_url())
        try:
            await conn.execute("CREATE DATABASE lockstock_fault")
        finally:
            await conn.close()

    asyncio.run(create())
    admin_url = own_postgres.admin_url("lockstock_fault")
    database.migrate(admin_url)
    passwords = {role: f"fault-{role}" for role in database.SERVICE_ROLES.values()}
    database.apply_role_passwords(admin_url, passwords)
    return admin_url, database.service_database_urls(admin_url, passwords)["orders"]


async def test_a_postgres_restart_under_load_loses_no_acknowledged_order_and_makes_no_500(
    own_postgres: EmbeddedPostgres,
    orders_database: tuple[str, str],
    credential_settings: Callable[[str], dict[str, Any]],
    as_gateway: dict[str, str],
) -> None:
    admin_url, orders_url = orders_database
    db = await asyncpg.connect(admin_url)
    try:
        product_ids = [
            await db.fetchval(
                "INSERT INTO inventory.products (name, price_cents, stock_qty)"
                " VALUES ($1, 100, $2) RETURNING id",
                f"fault-{i}",
                STOCK,
            )
            for i in range(PRODUCTS)
        ]
    finally:
        await db.close()

    settings = OrdersSettings(
        database_url=orders_url,
        payments_url="http://127.0.0.1:9",
        db_pool_size=WORKERS,
        **credential_settings("orders"),
    )
    answers: list[httpx.Response] = []
    acknowledged: list[int] = []
    restarted = asyncio.Event()

    async def place(client: httpx.AsyncClient, n: int) -> None:
        headers = {"Idempotency-Key": f"fault-{uuid.uuid4()}"} if n % 2 else {}
        body = {"items": [{"productId": product_ids[n % PRODUCTS], "qty": 1 + n % 3}]}
        response = await client.post("/orders", json=body, headers=headers)
        answers.append(response)
        if response.status_code == 201:
            acknowledged.append(response.json()["orderId"])

    async def load(client: httpx.AsyncClient) -> None:
        counter = iter(range(ORDERS))

        async def worker() -> None:
            for n in counter:
                await place(client, n)

        await asyncio.gather(*(worker() for _ in range(WORKERS)))

    async def restart() -> None:
        await wait_until(lambda: _at_least(acknowledged, 20), within_s=60)
        await asyncio.to_thread(own_postgres.stop)
        await asyncio.to_thread(own_postgres.start)
        restarted.set()

    with LiveServer(create_app(settings)) as server:
        async with httpx.AsyncClient(base_url=server.url, headers=as_gateway, timeout=60) as client:
            await asyncio.gather(load(client), restart())
            # After the restart the service serves again without being restarted itself.
            after = await client.post("/orders", json={"items": [{"productId": product_ids[0], "qty": 1}]})

    assert restarted.is_set()
    statuses = [a.status_code for a in answers]
    assert 500 not in statuses
    assert set(statuses) <= {201, 503}, sorted(set(statuses))
    for refused in (a for a in answers if a.status_code == 503):
        assert refused.headers["retry-after"]
        assert refused.json()["code"] in {"database_unavailable", "database_busy"}
    assert 503 in statuses  # the positive control: the loop really met the restart
    assert after.status_code == 201, after.text
    acknowledged.append(after.json()["orderId"])

    db = await asyncpg.connect(admin_url)
    try:
        found = {r["id"] for r in await db.fetch("SELECT id FROM orders.orders")}
        assert set(acknowledged) <= found, "an acknowledged order was lost"
        for product_id in product_ids:
            left = await db.fetchval("SELECT stock_qty FROM inventory.products WHERE id = $1", product_id)
            sold = await db.fetchval(
                "SELECT coalesce(sum(qty), 0) FROM orders.order_items WHERE product_id = $1", product_id
            )
            assert left + sold == STOCK, (product_id, left, sold)
    finally:
        await db.close()


async def _at_least(items: list[int], count: int) -> bool:
    return len(items) >= count
