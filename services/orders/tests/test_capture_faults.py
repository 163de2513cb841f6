"""Capture when payments misbehaves on purpose: errors, outages, slowness, declines, a racing cancel.

Every test runs its own payments and orders servers (real HTTP, real PostgreSQL), with the fault injected
by swapping the payments processor, wrapping the payments ASGI app, or pointing orders at a dead port.
"""

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.types import ASGIApp, Receive, Scope, Send

from orders.app import create_app as create_orders_app
from orders.settings import OrdersSettings
from payments.app import create_app as create_payments_app
from payments.processor import ProcessorOutcome, SimulatedProcessor
from payments.settings import PaymentsSettings
from servicekit.embedded import free_port
from servicekit.testing import LiveServer, wait_until

# Quick retries, so the faults resolve in a fraction of a second.
FAST_RETRIES: dict[str, Any] = {
    "payments_retry_wait_initial_s": 0.02,
    "payments_retry_wait_max_s": 0.2,
    "payments_retry_wait_jitter_s": 0.02,
}


@contextmanager
def orders_server(database_urls: dict[str, str], payments_url: str, **overrides: Any) -> Iterator[str]:
    settings = OrdersSettings(
        database_url=database_urls["orders"], payments_url=payments_url, **{**FAST_RETRIES, **overrides}
    )
    with LiveServer(create_orders_app(settings)) as server:
        yield server.url


class PaymentsServer:
    """A payments app of the test's own; ``wrap`` puts an ASGI layer in front of it."""

    def __init__(self, database_urls: dict[str, str], port: int | None = None, wrap=None) -> None:
        self.app = create_payments_app(PaymentsSettings(database_url=database_urls["payments"]))
        self.server = LiveServer(wrap(self.app) if wrap else self.app, port=port)
        self.url = self.server.url

    def __enter__(self) -> "PaymentsServer":
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(*exc)

    @property
    def processor(self) -> Any:
        return self.app.state.processor

    @processor.setter
    def processor(self, value: Any) -> None:
        self.app.state.processor = value


class CountingProcessor(SimulatedProcessor):
    """The simulator, counting how often it is asked; fails the first ``crashes`` times like an outage."""

    def __init__(self, *, crashes: int = 0, latency_s: float = 0.0) -> None:
        super().__init__(latency_s=latency_s)
        self.crashes = crashes
        self.calls = 0

    async def charge(self, reference: str, amount_cents: int) -> ProcessorOutcome:
        self.calls += 1
        if self.calls <= self.crashes:
            raise RuntimeError("processor outage")
        return await super().charge(reference, amount_cents)


class FailFirstCharges:
    """ASGI layer: the first ``failures`` POST /charges get ``status`` without reaching payments."""

    def __init__(self, app: ASGIApp, failures: int, status: int = 502) -> None:
        self.app = app
        self.failures = failures
        self.status = status
        self.seen = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/charges":
            self.seen += 1
            if self.seen <= self.failures:
                await send({"type": "http.response.start", "status": self.status, "headers": []})
                await send({"type": "http.response.body", "body": b"bad gateway"})
                return
        await self.app(scope, receive, send)


async def place_order(orders_url: str, make_product, price_cents: int = 1_000) -> int:
    product = await make_product(stock=10, price_cents=price_cents)
    async with httpx.AsyncClient(base_url=orders_url) as client:
        response = await client.post("/orders", json={"items": [{"productId": product, "qty": 1}]})
    assert response.status_code == 201, response.text
    return int(response.json()["orderId"])


async def capture(orders_url: str, order_id: int) -> httpx.Response:
    async with httpx.AsyncClient(base_url=orders_url, timeout=60) as client:
        return await client.post(f"/orders/{order_id}/capture")


async def get_order(orders_url: str, order_id: int) -> dict:
    async with httpx.AsyncClient(base_url=orders_url) as client:
        return (await client.get(f"/orders/{order_id}")).json()


async def charges_of(db, order_id: int) -> list:
    return await db.fetch("SELECT * FROM payments.charges WHERE order_id = $1 ORDER BY id", order_id)


async def test_payments_failing_twice_then_succeeding_makes_one_charge(
    service_database_urls, db, make_product
):
    with (
        PaymentsServer(service_database_urls) as payments,
        orders_server(service_database_urls, payments.url) as url,
    ):
        payments.processor = CountingProcessor(crashes=2)  # payments answers 500 twice, then charges
        order_id = await place_order(url, make_product)

        response = await capture(url, order_id)

        assert response.status_code == 200, response.text
        assert response.json()["status"] == "PAID"
        assert payments.processor.calls == 3
        [charge] = await charges_of(db, order_id)
        assert (charge["status"], charge["id"]) == ("succeeded", response.json()["charge_id"])


async def test_a_proxy_answering_502_twice_is_retried_with_the_same_key(
    service_database_urls, db, make_product
):
    layers: list[FailFirstCharges] = []

    def wrap(app: ASGIApp) -> ASGIApp:
        layers.append(FailFirstCharges(app, failures=2))
        return layers[-1]

    with (
        PaymentsServer(service_database_urls, wrap=wrap) as payments,
        orders_server(service_database_urls, payments.url) as url,
    ):
        order_id = await place_order(url, make_product)

        response = await capture(url, order_id)

        assert response.json()["status"] == "PAID"
        assert layers[0].seen == 3
        assert len(await charges_of(db, order_id)) == 1
        assert (
            await db.fetchval(
                "SELECT count(*) FROM payments.idempotency_keys WHERE key = $1", f"order-{order_id}-attempt-1"
            )
            == 1
        )


async def test_payments_down_is_a_503_leaves_the_order_unchanged_and_a_later_capture_charges_once(
    service_database_urls, db, make_product
):
    port = free_port()  # nothing listens here yet
    with orders_server(service_database_urls, f"http://127.0.0.1:{port}", payments_retry_attempts=3) as url:
        order_id = await place_order(url, make_product)
        before = await get_order(url, order_id)

        down = await capture(url, order_id)

        assert down.status_code == 503
        assert down.headers["content-type"] == "application/problem+json"
        assert down.json()["code"] == "payments_unavailable"
        assert "retry-after" in down.headers
        assert await get_order(url, order_id) == before
        assert await charges_of(db, order_id) == []

        with PaymentsServer(service_database_urls, port=port):  # payments comes back
            first = await capture(url, order_id)
            second = await capture(url, order_id)

        assert first.json()["status"] == "PAID"
        assert second.json() == first.json()
        assert len(await charges_of(db, order_id)) == 1


async def test_payments_failing_on_every_retry_is_a_503_and_the_half_made_charge_is_resumed_later(
    service_database_urls, db, make_product
):
    with (
        PaymentsServer(service_database_urls) as payments,
        orders_server(service_database_urls, payments.url, payments_retry_attempts=3) as url,
    ):
        payments.processor = CountingProcessor(crashes=10**6)
        order_id = await place_order(url, make_product)

        failed = await capture(url, order_id)

        assert failed.status_code == 503
        assert (await get_order(url, order_id))["status"] == "PENDING"
        assert [c["status"] for c in await charges_of(db, order_id)] == ["pending"]
        payments.processor = CountingProcessor()
        recovered = await capture(url, order_id)
        assert recovered.json()["status"] == "PAID"
        [charge] = await charges_of(db, order_id)
        assert (charge["status"], charge["id"]) == ("succeeded", recovered.json()["charge_id"])


async def test_an_answer_after_the_client_timed_out_is_replayed_by_the_retry(
    service_database_urls, db, make_product
):
    counters: list[FailFirstCharges] = []

    def count(app: ASGIApp) -> ASGIApp:
        counters.append(FailFirstCharges(app, failures=0))  # lets everything through, counting requests
        return counters[-1]

    with (
        PaymentsServer(service_database_urls, wrap=count) as payments,
        orders_server(
            service_database_urls, payments.url, payments_timeout_s=0.3, payments_retry_attempts=50
        ) as url,
    ):
        # Each charge takes 1 s; orders gives up on a call after 0.3 s. The charge still happens.
        payments.processor = CountingProcessor(latency_s=1.0)
        order_id = await place_order(url, make_product)

        response = await capture(url, order_id)

        assert response.status_code == 200, response.text
        assert response.json()["status"] == "PAID"
        assert counters[0].seen >= 2  # timed out, then retried (409 in flight, then the replay)
        assert payments.processor.calls == 1
        [charge] = await charges_of(db, order_id)
        assert (charge["status"], charge["id"]) == ("succeeded", response.json()["charge_id"])


async def test_a_decline_then_a_new_attempt_that_succeeds_leaves_one_failed_and_one_succeeded_charge(
    service_database_urls, db, make_product
):
    with (
        PaymentsServer(service_database_urls) as payments,
        orders_server(service_database_urls, payments.url) as url,
    ):
        payments.processor = SimulatedProcessor(success_rate=0.0)  # every card declines
        order_id = await place_order(url, make_product)

        declined = (await capture(url, order_id)).json()

        assert (declined["status"], declined["payment_failure_code"]) == ("PAYMENT_FAILED", "card_declined")
        payments.processor = SimulatedProcessor()  # the shopper fixed their card
        paid = (await capture(url, order_id)).json()
        assert (paid["status"], paid["payment_attempts"], paid["payment_failure_code"]) == ("PAID", 1, None)
        charges = await charges_of(db, order_id)
        assert [(c["status"], c["idempotency_key"]) for c in charges] == [
            ("failed", f"order-{order_id}-attempt-1"),
            ("succeeded", f"order-{order_id}-attempt-2"),
        ]
        assert paid["charge_id"] == charges[1]["id"]
        again = await capture(url, order_id)
        assert again.json() == paid
        assert len(await charges_of(db, order_id)) == 2


async def test_a_paid_order_is_returned_without_calling_payments(
    service_database_urls, orders_url, make_product
):
    order_id = await place_order(orders_url, make_product)
    paid = (await capture(orders_url, order_id)).json()
    assert paid["status"] == "PAID"

    with orders_server(service_database_urls, f"http://127.0.0.1:{free_port()}") as url:  # payments is gone
        response = await capture(url, order_id)

    assert response.status_code == 200
    assert response.json() == paid


class GatedProcessor(SimulatedProcessor):
    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    async def charge(self, reference: str, amount_cents: int) -> ProcessorOutcome:
        await asyncio.to_thread(self.gate.wait, 30)
        return await super().charge(reference, amount_cents)


async def test_an_order_cancelled_while_its_charge_succeeds_stays_cancelled_and_keeps_the_charge_id(
    service_database_urls, db, make_product
):
    with (
        PaymentsServer(service_database_urls) as payments,
        orders_server(service_database_urls, payments.url) as url,
    ):
        gated = GatedProcessor()
        payments.processor = gated
        product = await make_product(stock=5, price_cents=700)
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            placed = await client.post("/orders", json={"items": [{"productId": product, "qty": 2}]})
            order_id = placed.json()["orderId"]
            capturing = asyncio.create_task(client.post(f"/orders/{order_id}/capture"))
            await wait_until(
                lambda: db.fetchval("SELECT count(*) = 1 FROM payments.charges WHERE order_id = $1", order_id)
            )

            cancelled = await client.post(f"/orders/{order_id}/cancel")  # no lock is held during the charge
            gated.gate.set()
            response = await capturing

        assert cancelled.status_code == 200
        assert response.status_code == 409
        assert response.json()["code"] == "order_not_capturable"
        [charge] = await charges_of(db, order_id)
        assert charge["status"] == "succeeded"
        assert response.json()["charge_id"] == charge["id"]
        order = await get_order(url, order_id)
        assert (order["status"], order["charge_id"]) == ("CANCELLED", charge["id"])
        assert await db.fetchval("SELECT stock_qty FROM inventory.products WHERE id = $1", product) == 5


class SwitchableProcessor(SimulatedProcessor):
    """Declines every card while ``declining`` is set, like a shopper whose card is refused, then fixed."""

    def __init__(self) -> None:
        super().__init__()
        self.declining = False

    async def charge(self, reference: str, amount_cents: int) -> ProcessorOutcome:
        if self.declining:
            return ProcessorOutcome(succeeded=False, failure_code="card_declined")
        return await super().charge(reference, amount_cents)


@pytest.fixture(scope="module")
def shared_pair(service_database_urls) -> Iterator[tuple[PaymentsServer, str]]:
    with (
        PaymentsServer(service_database_urls) as payments,
        orders_server(service_database_urls, payments.url) as url,
    ):
        payments.processor = SwitchableProcessor()
        yield payments, url


OPERATIONS = st.lists(
    st.sampled_from(["capture", "capture x3", "cancel", "card refused", "card fixed"]), min_size=1, max_size=7
)


@given(operations=OPERATIONS)
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
async def test_no_sequence_of_captures_declines_and_cancels_ever_charges_an_order_twice(
    shared_pair, db, make_product, operations
):
    payments, url = shared_pair
    processor: SwitchableProcessor = payments.processor
    processor.declining = False
    product = await make_product(stock=3, price_cents=1_500)
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        placed = await client.post("/orders", json={"items": [{"productId": product, "qty": 2}]})
        order_id = placed.json()["orderId"]
        for operation in operations:
            if operation == "card refused":
                processor.declining = True
            elif operation == "card fixed":
                processor.declining = False
            elif operation == "cancel":
                assert (await client.post(f"/orders/{order_id}/cancel")).status_code in (200, 409)
            else:
                times = 3 if operation == "capture x3" else 1
                responses = await asyncio.gather(
                    *(client.post(f"/orders/{order_id}/capture") for _ in range(times))
                )
                assert {r.status_code for r in responses} <= {200, 409}
        order = (await client.get(f"/orders/{order_id}")).json()

    charges = await charges_of(db, order_id)
    succeeded = [c for c in charges if c["status"] == "succeeded"]
    assert len(succeeded) <= 1
    assert not [c for c in charges if c["status"] == "pending"]
    assert order["payment_attempts"] == len([c for c in charges if c["status"] == "failed"])
    if order["status"] == "PAID":
        assert order["charge_id"] == succeeded[0]["id"]
    elif order["status"] == "CANCELLED":
        assert order["charge_id"] == (succeeded[0]["id"] if succeeded else None)
    else:
        assert succeeded == []
    stock = await db.fetchval("SELECT stock_qty FROM inventory.products WHERE id = $1", product)
    assert stock == (3 if order["status"] == "CANCELLED" else 1)
