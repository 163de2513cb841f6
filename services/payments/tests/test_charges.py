"""POST /charges and its Idempotency-Key, over real HTTP against real PostgreSQL."""

import asyncio
import itertools
import random
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payments.app import create_app
from payments.processor import ProcessorOutcome, SimulatedProcessor
from payments.schemas import MAX_AMOUNT_CENTS
from payments.settings import PaymentsSettings
from servicekit.testing import LiveServer

# Order ids far above any real order's, so these charges never meet an order the orders tests create.
_order_ids = itertools.count(random.randint(10**12, 2 * 10**12) * 1000)


def new_order_id() -> int:
    return next(_order_ids)


def new_key() -> str:
    return f"test-{time.monotonic_ns()}-{random.getrandbits(32)}"


@pytest.fixture
async def client(payments_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=payments_url, timeout=30) as client:
        yield client


class ControlledApp:
    """A payments app of the test's own, whose processor the test can make slow or broken."""

    def __init__(self, database_url: str) -> None:
        self.app = create_app(PaymentsSettings(database_url=database_url))
        self.server = LiveServer(self.app)
        self.url = self.server.url

    @property
    def processor(self) -> object:
        return self.app.state.processor

    @processor.setter
    def processor(self, value: object) -> None:
        self.app.state.processor = value


@pytest.fixture(scope="module")
def controlled(service_database_urls: dict[str, str]) -> Iterator[ControlledApp]:
    controlled = ControlledApp(service_database_urls["payments"])
    with controlled.server:
        yield controlled


@pytest.fixture
async def controlled_client(controlled: ControlledApp) -> AsyncIterator[httpx.AsyncClient]:
    controlled.processor = SimulatedProcessor()
    async with httpx.AsyncClient(base_url=controlled.url, timeout=30) as client:
        yield client
    controlled.processor = SimulatedProcessor()


async def charges_of(db, order_id: int) -> list:
    return await db.fetch("SELECT * FROM payments.charges WHERE order_id = $1 ORDER BY id", order_id)


async def charge(client: httpx.AsyncClient, order_id: int, amount_cents: int, key: str | None) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return await client.post(
        "/charges", json={"order_id": order_id, "amount_cents": amount_cents}, headers=headers
    )


async def test_a_charge_succeeds_and_can_be_read_back(client, db):
    order_id = new_order_id()

    response = await charge(client, order_id, 1_234, new_key())

    assert response.status_code == 201, response.text
    created = response.json()
    assert created["status"] == "succeeded"
    assert isinstance(created["charge_id"], int)
    assert created["failure_code"] is None
    read = (await client.get(f"/charges/{created['charge_id']}")).json()
    assert read["charge_id"] == created["charge_id"]
    assert (read["order_id"], read["amount_cents"], read["status"]) == (order_id, 1_234, "succeeded")
    listed = (await client.get("/charges", params={"order_id": order_id})).json()
    assert [c["charge_id"] for c in listed] == [created["charge_id"]]
    assert set(listed[0]) == {"charge_id", "order_id", "amount_cents", "status", "failure_code", "created_at"}
    assert len(await charges_of(db, order_id)) == 1
