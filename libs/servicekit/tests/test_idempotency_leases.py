"""Idempotency leases: a running request renews its claim, so a retry cannot take over a key still in use;
claims are fenced, so a request that lost its key cannot store its answer over, or release, the claim of
the one that took it over; and a TTL shorter than the lease is refused at start-up."""

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta

import asyncpg
import httpx
import pytest
from fastapi import FastAPI, Request
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.responses import JSONResponse, Response

from devstack.testing import LiveServer, wait_until
from orders.settings import OrdersSettings
from payments.settings import PaymentsSettings
from servicekit.db import asyncpg_url, plain_url
from servicekit.errors import install_error_handlers
from servicekit.idempotency import Claim, IdempotencyStore, LeaseTooLong, StoredResponse, run_idempotently

LEASE = timedelta(milliseconds=300)
TABLE = "public.lease_test_keys"


@pytest.fixture(scope="module")
def lease_table(postgres_admin_url: str) -> str:
    async def create() -> None:
        conn = await asyncpg.connect(plain_url(postgres_admin_url))
        try:
            await conn.execute(
                f"""CREATE TABLE IF NOT EXISTS {TABLE} (
                      key text PRIMARY KEY, fingerprint text NOT NULL, state text NOT NULL,
                      response_status integer, response_content_type text, response_body bytea,
                      created_at timestamptz NOT NULL DEFAULT now(),
                      locked_at timestamptz NOT NULL DEFAULT now())"""
            )
        finally:
            await conn.close()

    asyncio.run(create())
    return postgres_admin_url


class Gate:
    """Holds every handler run until the test opens it, and counts the runs."""

    def __init__(self) -> None:
        self.runs = 0
        self.open = threading.Event()


@pytest.fixture(scope="module")
def gate() -> Gate:
    return Gate()


@pytest.fixture(scope="module")
def app_url(lease_table: str, gate: Gate) -> Iterator[str]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_async_engine(asyncpg_url(lease_table))
        app.state.store = IdempotencyStore(engine, TABLE, ttl=timedelta(hours=1), lease=LEASE)
        yield
        await engine.dispose()

    app = FastAPI(lifespan=lifespan)
    install_error_handlers(app)

    @app.post("/work")
    async def work(request: Request) -> Response:
        async def handle(claim: Claim | None) -> Response:
            gate.runs += 1
            await asyncio.to_thread(gate.open.wait, 30)
            return JSONResponse({"run": gate.runs}, status_code=201)

        return await run_idempotently(
            request.app.state.store, request, request.headers.get("idempotency-key"), {"x": 1}, handle
        )

    with LiveServer(app) as server:
        yield server.url


@pytest.fixture
async def db(lease_table: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(plain_url(lease_table))
    try:
        yield conn
    finally:
        await conn.close()


async def test_a_retry_cannot_take_over_a_key_whose_request_is_still_running(
    app_url: str, gate: Gate, db: asyncpg.Connection
) -> None:
    gate.runs, key = 0, f"k-{uuid.uuid4()}"
    gate.open.clear()
    async with httpx.AsyncClient(base_url=app_url, timeout=30) as client:
        first = asyncio.create_task(client.post("/work", headers={"Idempotency-Key": key}))

        async def held_for_many_leases() -> bool:
            age = await db.fetchval(f"SELECT now() - created_at FROM {TABLE} WHERE key = $1", key)
            return age is not None and age > 4 * LEASE

        await wait_until(held_for_many_leases)
        # Without renewal the claim would be stale by now and these retries would run beside the first.
        retries = await asyncio.gather(
            *(client.post("/work", headers={"Idempotency-Key": key}) for _ in range(5))
        )
        assert [r.status_code for r in retries] == [409] * 5
        assert all(r.json()["code"] == "idempotency_key_in_use" for r in retries)
        gate.open.set()
        assert (await first).status_code == 201
        replay = await client.post("/work", headers={"Idempotency-Key": key})
    assert replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"
    assert gate.runs == 1


async def test_concurrent_first_requests_with_one_key_run_once(app_url: str, gate: Gate) -> None:
    gate.runs, key = 0, f"k-{uuid.uuid4()}"
    gate.open.set()
    async with httpx.AsyncClient(base_url=app_url, timeout=30) as client:
        answers = await asyncio.gather(
            *(client.post("/work", headers={"Idempotency-Key": key}) for _ in range(10))
        )
    assert gate.runs == 1
    assert sorted({a.status_code for a in answers}) in ([201], [201, 409])
    assert sum(a.status_code == 201 and "idempotent-replayed" not in a.headers for a in answers) == 1


async def test_a_request_that_lost_its_key_cannot_complete_or_release_over_the_one_that_took_it(
    lease_table: str, db: asyncpg.Connection
) -> None:
    engine = create_async_engine(asyncpg_url(lease_table))
    try:
        store = IdempotencyStore(engine, TABLE, ttl=timedelta(hours=1), lease=LEASE)
        key = f"k-{uuid.uuid4()}"
        paused = await store.claim(key, "fp")  # a request that then stalls past its lease, renewing nothing
        assert isinstance(paused, Claim)

        async def stale() -> bool:
            age = await db.fetchval(f"SELECT now() - locked_at FROM {TABLE} WHERE key = $1", key)
            return bool(age > LEASE)

        await wait_until(stale)
        taker = await store.claim(key, "fp")
        assert isinstance(taker, Claim)
        assert taker.recovered
        assert taker.token != paused.token

        assert not await store.complete(key, JSONResponse({"who": "paused"}), token=paused.token)
        assert not await store.release(key, token=paused.token)
        assert await db.fetchval(f"SELECT state FROM {TABLE} WHERE key = $1", key) == "in_flight"
        assert not await store.renew(paused)

        assert await store.renew(taker)  # the live claim renews (and its token moves)
        assert await store.complete(key, JSONResponse({"who": "taker"}), token=taker.token)
        stored = await store.claim(key, "fp")
        assert isinstance(stored, StoredResponse)
        assert stored.body == b'{"who":"taker"}'
    finally:
        await engine.dispose()


def test_a_ttl_shorter_than_the_lease_is_refused_at_start_up() -> None:
    for settings in (OrdersSettings, PaymentsSettings):
        with pytest.raises(ValidationError, match="longer than"):
            settings(idempotency_ttl_hours=0.01, idempotency_lease_s=60)
        assert settings(idempotency_ttl_hours=0.1, idempotency_lease_s=60).idempotency_lease == timedelta(
            minutes=1
        )
    with pytest.raises(LeaseTooLong):
        IdempotencyStore(None, TABLE, ttl=timedelta(seconds=30), lease=timedelta(seconds=60))  # type: ignore[arg-type]
