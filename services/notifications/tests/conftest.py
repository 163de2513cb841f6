"""Notifications test helpers: a producer that writes events as orders and inventory do, an SMTP sink that
counts what arrives, a webhook receiver that verifies signatures as a real one would, and workers (in
process, with an injectable clock, or as a real subprocess that a test can kill -9).

(Test modules reach these through fixtures: with --import-mode=importlib a conftest cannot be imported.)"""

import asyncio
import itertools
import json
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from typing import Any

import asyncpg
import httpx
import pytest
from aiosmtpd.controller import Controller
from standardwebhooks.webhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from devstack.embedded import free_port
from devstack.testing import LiveServer, wait_for_port, wait_until
from notifications.app import create_app
from notifications.clock import Clock
from notifications.settings import NotificationsSettings
from servicekit.db import plain_url
from servicekit.sync import run_sync

# Ids far above any real order's or product's, so these events never meet another test's.
_ids = itertools.count(random.randint(10**12, 2 * 10**12) * 1000)


def new_id() -> int:
    return next(_ids)


class Producer:
    """Inserts events into outbox.events as a producer would, logged in as orders_svc (or inventory_svc):
    the roles' grants are part of what is tested."""

    def __init__(self, orders: asyncpg.Connection, inventory: asyncpg.Connection) -> None:
        self.orders = orders
        self.inventory = inventory

    async def emit(
        self,
        type_: str,
        aggregate_id: int,
        data: dict[str, Any],
        *,
        aggregate: str | None = None,
        conn: asyncpg.Connection | None = None,
        occurred_at: Any = None,
    ) -> str:
        aggregate = aggregate or type_.split(".")[0].replace("payment", "order").replace("stock", "product")
        conn = conn or (self.inventory if aggregate == "product" else self.orders)
        # No RETURNING: a producer may insert events, not read them back (RETURNING would need SELECT).
        event_id = uuid.uuid4()
        await conn.execute(
            """
            INSERT INTO outbox.events (event_id, type, aggregate, aggregate_id, data, occurred_at)
            VALUES ($1, $2, $3, $4, $5::jsonb, coalesce($6, now()))
            """,
            event_id,
            type_,
            aggregate,
            aggregate_id,
            json.dumps(data),
            occurred_at,
        )
        return str(event_id)


def order_data(
    order_id: int, email: str | None, items: list[tuple[int, int, int]] | None = None, **extra: Any
) -> dict[str, Any]:
    items = items or [(new_id(), 1, 1_000)]
    return {
        "order_id": order_id,
        "total_cents": sum(q * p for _, q, p in items),
        "items": [{"product_id": pid, "qty": q, "price_cents": p} for pid, q, p in items],
        "customer": None if email is None else {"email": email, "name": "Ada Lovelace"},
        **extra,
    }


@pytest.fixture
async def producer(service_database_urls: dict[str, str]) -> AsyncIterator[Producer]:
    orders = await asyncpg.connect(plain_url(service_database_urls["orders"]))
    inventory = await asyncpg.connect(plain_url(service_database_urls["inventory"]))
    try:
        yield Producer(orders, inventory)
    finally:
        await orders.close()
        await inventory.close()


@dataclass
class Received:
    message_id: str
    to: str
    subject: str
    kind: str


@dataclass
class MailSink:
    """An aiosmtpd server on a free port that keeps every message it is handed."""

    port: int
    messages: list[Received] = field(default_factory=list)
    delay_s: float = 0.0

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)  # a slow mail server, so a batch is still going when killed
        parsed = message_from_bytes(envelope.content)
        self.messages.append(
            Received(parsed["Message-ID"], parsed["To"], parsed["Subject"], parsed["X-Lockstock-Kind"] or "")
        )
        return "250 OK"

    def to(self, addresses: set[str]) -> list[Received]:
        return [m for m in self.messages if any(a in m.to for a in addresses)]


@pytest.fixture
def mail_sink() -> Iterator[MailSink]:
    sink = MailSink(port=free_port())
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


class Receiver:
    """A webhook receiver: verifies each request with standardwebhooks' Webhook.verify, dedupes on
    webhook-id, and answers what ``script`` says for each successive request ('ok', 'fail', 'slow')."""

    def __init__(self, slow_s: float = 2.0) -> None:
        self.secret: str | None = None
        self.script: list[str] = []
        self.slow_s = slow_s
        self.requests: list[dict[str, Any]] = []
        self.accepted: dict[str, dict[str, Any]] = {}
        self.order: list[str] = []  # webhook-ids in the order first accepted
        self.lock = threading.Lock()
        self.app = Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])
        self.server = LiveServer(self.app)
        self.url = f"{self.server.url}/hook"

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        assert self.secret is not None
        try:
            payload = Webhook(self.secret).verify(body, dict(request.headers))
            verified = True
        except Exception:
            payload, verified = None, False
        with self.lock:
            behaviour = self.script.pop(0) if self.script else "ok"
            self.requests.append(
                {"id": request.headers.get("webhook-id"), "verified": verified, "behaviour": behaviour}
            )
        if not verified:
            return Response(status_code=400)
        if behaviour == "fail":
            return Response(status_code=500)
        if behaviour == "slow":
            await asyncio.sleep(self.slow_s)  # longer than the worker's timeout: it gives up first
        msg_id = request.headers["webhook-id"]
        with self.lock:
            if msg_id not in self.accepted:
                self.accepted[msg_id] = payload
                self.order.append(msg_id)
        return Response(status_code=204)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    with receiver.server:
        yield receiver


@pytest.fixture
async def api(notifications_api_url: str, as_gateway: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    """The notifications API alone (the root conftest's notifications_api_url: no worker, loopback webhook
    URLs allowed), called as the gateway."""
    async with httpx.AsyncClient(base_url=notifications_api_url, headers=as_gateway, timeout=30) as client:
        yield client


@pytest.fixture
async def endpoints(api: httpx.AsyncClient) -> AsyncIterator[list[int]]:
    """Endpoint ids a test registers; deleted afterwards so later tests' events never go to them."""
    created: list[int] = []
    yield created
    for endpoint_id in created:
        await api.delete(f"/webhooks/endpoints/{endpoint_id}")


async def register(api: httpx.AsyncClient, receiver: Receiver, endpoints: list[int], types: list[str]) -> int:
    response = await api.post("/webhooks/endpoints", json={"url": receiver.url, "event_types": types})
    assert response.status_code == 201, response.text
    receiver.secret = response.json()["secret"]
    endpoints.append(response.json()["id"])
    return int(response.json()["id"])


def worker_settings(database_url: str, smtp_url: str, **overrides: Any) -> NotificationsSettings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "smtp_url": smtp_url,
        "webhooks_allow_private": True,
        "poll_interval_s": 0.05,
        "webhook_timeout_s": 0.5,
        "lease_s": 5,
        **overrides,
    }
    return NotificationsSettings(**values)


class Workers:
    """Start workers in process (``start``, with an optional clock) or as subprocesses (``spawn``)."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.processes: list[subprocess.Popen[bytes]] = []

    @contextmanager
    def start(self, smtp_url: str, clock: Clock | None = None, **overrides: Any) -> Iterator[LiveServer]:
        app = create_app(worker_settings(self.database_url, smtp_url, **overrides), clock=clock)
        with LiveServer(app) as server:
            yield server

    def spawn(self, smtp_url: str, **env: str) -> subprocess.Popen[bytes]:
        """The worker as `task up` runs it: uvicorn serving notifications.app:create_app."""
        port = free_port()
        environment = {
            **os.environ,
            "NOTIFICATIONS_DATABASE_URL": self.database_url,
            "NOTIFICATIONS_SMTP_URL": smtp_url,
            "NOTIFICATIONS_WEBHOOKS_ALLOW_PRIVATE": "true",
            "NOTIFICATIONS_POLL_INTERVAL_S": "0.05",
            "NOTIFICATIONS_LEASE_S": "3",
            "NOTIFICATIONS_BATCH_SIZE": "10",
            "NOTIFICATIONS_LOG_LEVEL": "WARNING",
            **env,
        }
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "notifications.app:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-access-log",
            ],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.processes.append(process)
        wait_for_port(port, timeout=30)
        return process

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


async def close_backlog(database_url: str) -> None:
    """Earlier tests' events, left undispatched (the suite's shared notifications app runs no worker), are
    marked dispatched. A worker takes the oldest events first, so without this a test's workers spent its
    time on the whole suite's backlog: a two-worker test once waited past its 90 s in a full run and took
    7 s alone."""
    conn = await asyncpg.connect(plain_url(database_url))
    try:
        await conn.execute("UPDATE outbox.events SET dispatched_at = now() WHERE dispatched_at IS NULL")
    finally:
        await conn.close()


@pytest.fixture
def workers(service_database_urls: dict[str, str]) -> Iterator[Workers]:
    """Workers for this test alone: set up before the test writes any event of its own, and the backlog
    earlier tests left closed first (close_backlog)."""
    run_sync(close_backlog(service_database_urls["notifications"]))
    workers = Workers(service_database_urls["notifications"])
    try:
        yield workers
    finally:
        workers.stop_all()


@pytest.fixture
def wait() -> Any:
    return wait_until


async def jobs_done(db: asyncpg.Connection, event_ids: list[str], consumers: list[str]) -> bool:
    """True when every event was dispatched and none has a pending job for any of ``consumers``."""
    return bool(
        await db.fetchval(
            """
            SELECT NOT EXISTS (SELECT 1 FROM outbox.events
                                WHERE event_id = ANY($1::uuid[]) AND dispatched_at IS NULL)
               AND NOT EXISTS (SELECT 1 FROM notifications.jobs
                                WHERE event_id = ANY($1::uuid[]) AND consumer = ANY($2) AND state = 'pending')
               AND (SELECT count(*) FROM outbox.events WHERE event_id = ANY($1::uuid[])) = cardinality($1)
            """,
            event_ids,
            consumers,
        )
    )


@pytest.fixture
def settled() -> Any:
    return jobs_done


@pytest.fixture
def ids() -> Any:
    return new_id


@pytest.fixture
def order() -> Any:
    return order_data


@pytest.fixture
def register_endpoint() -> Any:
    return register


@pytest.fixture
def elapsed() -> Any:
    return time.monotonic
