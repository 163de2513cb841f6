"""POST /charges and its Idempotency-Key, over real HTTP against real PostgreSQL."""

import asyncio
import itertools
import random
import sys
import threading
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
from servicekit.testing import LiveServer, wait_until

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


async def charge(
    client: httpx.AsyncClient, order_id: int, amount_cents: int, key: str | None
) -> httpx.Response:
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


@pytest.mark.parametrize(
    ("amount_cents", "failure_code"),
    [(1_002, "card_declined"), (2_005, "insufficient_funds"), (102, "card_declined")],
)
async def test_test_card_amounts_decline_deterministically(client, db, amount_cents, failure_code):
    order_id = new_order_id()

    response = await charge(client, order_id, amount_cents, new_key())

    assert response.status_code == 201
    assert response.json()["status"] == "failed"
    assert response.json()["failure_code"] == failure_code
    [row] = await charges_of(db, order_id)
    assert (row["status"], row["failure_code"]) == ("failed", failure_code)


@given(amount_cents=st.integers(min_value=1, max_value=MAX_AMOUNT_CENTS))
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
async def test_only_test_amounts_decline_at_the_default_success_rate(payments_url, amount_cents):
    async with httpx.AsyncClient(base_url=payments_url, timeout=30) as client:
        response = await charge(client, new_order_id(), amount_cents, new_key())
    assert response.status_code == 201
    expected = {2: "card_declined", 5: "insufficient_funds"}.get(amount_cents % 100)
    assert response.json()["status"] == ("failed" if expected else "succeeded")
    assert response.json()["failure_code"] == expected


async def test_the_same_key_and_body_replay_the_first_answer_byte_for_byte(client, db):
    order_id, key = new_order_id(), new_key()
    first = await charge(client, order_id, 5_000, key)

    again = await charge(client, order_id, 5_000, key)

    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert len(await charges_of(db, order_id)) == 1


async def test_a_decline_is_a_final_answer_replayed_not_retried(client, db):
    order_id, key = new_order_id(), new_key()
    first = await charge(client, order_id, 1_002, key)

    again = await charge(client, order_id, 1_002, key)

    assert again.content == first.content
    assert again.json()["status"] == "failed"
    assert again.headers["idempotent-replayed"] == "true"
    assert len(await charges_of(db, order_id)) == 1


async def test_the_same_key_with_another_body_is_refused(client, db):
    order_id, key = new_order_id(), new_key()
    await charge(client, order_id, 5_000, key)

    other_amount = await charge(client, order_id, 6_000, key)
    other_order = await charge(client, new_order_id(), 5_000, key)

    for response in (other_amount, other_order):
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "idempotency_key_reused"
    assert len(await charges_of(db, order_id)) == 1


async def test_a_missing_key_is_refused_and_writes_nothing(client, db):
    order_id = new_order_id()

    response = await charge(client, order_id, 5_000, None)

    assert response.status_code == 400
    assert response.json()["code"] == "idempotency_key_missing"
    assert await charges_of(db, order_id) == []


async def test_a_key_over_255_characters_is_refused_and_writes_nothing(client, db):
    order_id = new_order_id()

    too_long = await charge(client, order_id, 5_000, "k" * 256)
    empty = await charge(client, order_id, 5_000, "")

    assert too_long.status_code == empty.status_code == 400
    assert too_long.json()["code"] == "idempotency_key_invalid"
    assert await charges_of(db, order_id) == []
    longest = await charge(client, order_id, 5_000, "k" * 254 + new_key()[-1])
    assert longest.status_code == 201


@pytest.mark.parametrize(
    "body",
    [
        {"order_id": 1, "amount_cents": 0},
        {"order_id": 1, "amount_cents": -100},
        {"order_id": 1, "amount_cents": 10.5},
        {"order_id": 1, "amount_cents": "1000"},
        {"order_id": 1, "amount_cents": True},
        {"order_id": 1, "amount_cents": MAX_AMOUNT_CENTS + 1},
        {"order_id": 0, "amount_cents": 1000},
        {"order_id": 2**63, "amount_cents": 1000},
        {"amount_cents": 1000},
        {"order_id": 1},
        {"order_id": 1, "amount_cents": 1000, "currency": "usd"},
        [],
    ],
)
async def test_bad_bodies_are_refused_write_nothing_and_leave_the_key_free(client, db, body):
    key = new_key()
    charges_before = await db.fetchval("SELECT count(*) FROM payments.charges")

    response = await client.post("/charges", json=body, headers={"Idempotency-Key": key})

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "validation_error"
    assert await db.fetchval("SELECT count(*) FROM payments.charges") == charges_before
    assert await db.fetchval("SELECT count(*) FROM payments.idempotency_keys WHERE key = $1", key) == 0


async def test_malformed_json_is_a_400(client):
    response = await client.post(
        "/charges",
        content=b'{"order_id": 1,',
        headers={"Idempotency-Key": new_key(), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"


async def test_unknown_charges_are_404_and_bad_ids_422(client):
    assert (await client.get(f"/charges/{2**62}")).json()["code"] == "charge_not_found"
    assert (await client.get("/charges/0")).status_code == 422
    assert (await client.get("/charges/abc")).status_code == 422
    assert (await client.get("/charges")).status_code == 422  # order_id is required
    assert (await client.get("/charges", params={"order_id": new_order_id()})).json() == []


class SlowProcessor(SimulatedProcessor):
    """Blocks every charge until the test releases it, and counts the charges made."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()  # set from the test's event loop, waited on in the server's
        self.calls = 0

    async def charge(self, reference: str, amount_cents: int) -> ProcessorOutcome:
        self.calls += 1
        await asyncio.to_thread(self.release.wait, 30)
        return await super().charge(reference, amount_cents)


async def test_the_same_key_while_the_first_is_in_flight_gets_409_with_retry_after(
    controlled, controlled_client, db
):
    processor = SlowProcessor()
    controlled.processor = processor
    order_id, key = new_order_id(), new_key()
    first = asyncio.create_task(charge(controlled_client, order_id, 5_000, key))
    await wait_until(
        lambda: db.fetchval("SELECT count(*) = 1 FROM payments.charges WHERE order_id = $1", order_id)
    )

    second = await charge(controlled_client, order_id, 5_000, key)

    assert second.status_code == 409
    assert second.json()["code"] == "idempotency_key_in_use"
    assert second.headers["retry-after"] == "1"
    processor.release.set()
    assert (await first).status_code == 201
    replay = await charge(controlled_client, order_id, 5_000, key)
    assert replay.content == (await first).content
    assert processor.calls == 1


async def test_twenty_concurrent_requests_with_one_new_key_make_one_charge(controlled, controlled_client, db):
    controlled.processor = SimulatedProcessor(latency_s=0.05)
    order_id, key = new_order_id(), new_key()

    responses = await asyncio.gather(*(charge(controlled_client, order_id, 7_700, key) for _ in range(20)))

    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {201, 409}, statuses
    ok = [r for r in responses if r.status_code == 201]
    assert ok
    assert len({r.json()["charge_id"] for r in ok}) == 1
    assert all(r.json()["code"] == "idempotency_key_in_use" for r in responses if r.status_code == 409)
    [row] = await charges_of(db, order_id)
    assert row["id"] == ok[0].json()["charge_id"]


class CrashingProcessor(SimulatedProcessor):
    """Fails (as a processor outage or a bug would) the first ``failures`` times it is asked."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.calls = 0

    async def charge(self, reference: str, amount_cents: int) -> ProcessorOutcome:
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError("processor exploded")
        return await super().charge(reference, amount_cents)


async def test_a_crash_before_the_decision_is_not_stored_and_the_retry_makes_one_charge(
    controlled, controlled_client, db
):
    controlled.processor = CrashingProcessor(failures=1)
    order_id, key = new_order_id(), new_key()

    crashed = await charge(controlled_client, order_id, 3_300, key)

    assert crashed.status_code == 500
    assert crashed.json()["code"] == "internal_error"
    assert "processor exploded" not in crashed.text
    assert await db.fetchval("SELECT count(*) FROM payments.idempotency_keys WHERE key = $1", key) == 0
    retried = await charge(controlled_client, order_id, 3_300, key)
    assert retried.status_code == 201
    assert retried.json()["status"] == "succeeded"
    [row] = await charges_of(db, order_id)  # the pending charge was resumed, not doubled
    assert row["id"] == retried.json()["charge_id"]


async def test_an_order_is_never_charged_twice_even_under_different_keys(client, db):
    order_id = new_order_id()
    declined = await charge(client, order_id, 1_002, new_key())
    assert declined.json()["status"] == "failed"

    paid = await charge(client, order_id, 1_002 - 2, new_key())
    again = await charge(client, order_id, 1_000, new_key())

    assert paid.json()["status"] == "succeeded"
    assert again.status_code == 409
    assert again.json()["code"] == "order_already_charged"
    assert again.json()["charge_id"] == paid.json()["charge_id"]
    rows = await charges_of(db, order_id)
    assert [r["status"] for r in rows] == ["failed", "succeeded"]


async def test_concurrent_charges_of_one_order_under_different_keys_make_at_most_one_success(
    controlled, controlled_client, db
):
    controlled.processor = SimulatedProcessor(latency_s=0.05)
    order_id = new_order_id()

    responses = await asyncio.gather(
        *(charge(controlled_client, order_id, 4_000, new_key()) for _ in range(10))
    )

    assert {r.status_code for r in responses} <= {201, 409}
    assert {r.json()["code"] for r in responses if r.status_code == 409} <= {
        "charge_in_progress",
        "order_already_charged",
    }
    assert [r["status"] for r in await charges_of(db, order_id)] == ["succeeded"]


async def test_expired_keys_are_pruned_by_the_cli(service_database_urls, db):
    old, fresh = new_key(), new_key()
    await db.execute(
        """
        INSERT INTO payments.idempotency_keys (key, fingerprint, state, response_status, created_at)
        VALUES ($1, 'x', 'done', 201, now() - interval '25 hours'), ($2, 'x', 'done', 201, now())
        """,
        old,
        fresh,
    )

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "payments.prune",
        env={"PAYMENTS_DATABASE_URL": service_database_urls["payments"], "PATH": "/usr/bin:/bin"},
        stdout=asyncio.subprocess.PIPE,
    )
    stdout, _ = await asyncio.wait_for(process.communicate(), 60)

    assert process.returncode == 0
    assert "pruned" in stdout.decode()
    remaining = await db.fetch("SELECT key FROM payments.idempotency_keys WHERE key = ANY($1)", [old, fresh])
    assert [r["key"] for r in remaining] == [fresh]


async def test_the_service_prunes_expired_keys_itself(service_database_urls, db):
    old = new_key()
    await db.execute(
        "INSERT INTO payments.idempotency_keys (key, fingerprint, state, created_at)"
        " VALUES ($1, 'x', 'done', now() - interval '2 hours')",
        old,
    )
    settings_ = PaymentsSettings(
        database_url=service_database_urls["payments"],
        idempotency_ttl_hours=1,
        idempotency_prune_interval_s=0.05,
    )
    with LiveServer(create_app(settings_)):
        await wait_until(
            lambda: db.fetchval("SELECT count(*) = 0 FROM payments.idempotency_keys WHERE key = $1", old)
        )
