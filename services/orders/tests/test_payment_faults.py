"""Payments misbehaving on purpose during authorize, capture, void and refund (down, slow beyond the retry
budget, answering 502), and an orders process killed between payments' answer and its own update: the
reconciler finishes the job, nothing is charged twice, nothing charged stays unrecorded.

Every test runs its own payments and orders servers (real HTTP, real PostgreSQL); a fault is injected by
making the processor slow, wrapping the payments ASGI app, stopping payments, or SIGKILLing a real orders
process.
"""

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from devstack.embedded import free_port
from devstack.testing import wait_for_port, wait_until
from payments.processor import SimulatedProcessor

GOOD_CARD = "4242 4242 4242 4242"
# Each call to payments times out after 0.5 s and all retries together after 1 s; a processor taking
# 2.5 s a call is therefore slow beyond the budget, and the call keeps running at payments after orders
# gave up (as a real slow processor would).
TIGHT = {"payments_timeout_s": 0.5, "payments_retry_timeout_s": 1.0, "payments_retry_attempts": 3}
SLOW_S = 2.5


async def payments_of(db, order_id: int) -> list:
    return await db.fetch("SELECT * FROM payments.payments WHERE order_id = $1 ORDER BY id", order_id)


async def place(orders, make_product, price_cents: int = 1_500) -> tuple[int, int]:
    product = await make_product(stock=10, price_cents=price_cents)
    return (await orders.place(product))["orderId"], product


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "payments_unavailable"
    assert "retry-after" in response.headers


async def test_payments_down_during_authorize_changes_nothing_and_a_later_authorize_pays_once(
    payments_server, orders_server, api, db, make_product, reconciler, invariants
):
    port = free_port()  # nothing listens here yet
    with orders_server(f"http://127.0.0.1:{port}", payments_retry_attempts=3) as url:
        async with api(url) as orders:
            order_id, product = await place(orders, make_product)
            before = await orders.get(order_id)

            down = await orders.authorize(order_id)

            assert_unavailable(down)
            assert await orders.get(order_id) == before
            with payments_server(port=port) as payments:  # payments comes back
                await reconciler.reconcile(payments.url)
                assert (await orders.get(order_id))["status"] == "PENDING"  # nothing was authorized
                authorized = await orders.authorize(order_id)
    assert authorized.json()["status"] == "AUTHORIZED"
    assert len(await payments_of(db, order_id)) == 1
    await invariants(db, {product: 10})


async def test_an_authorization_answered_after_the_budget_is_applied_by_the_reconciler(
    payments_server, orders_server, api, db, make_product, reconciler, invariants
):
    with payments_server(processor_latency_s=SLOW_S) as payments, orders_server(payments.url, **TIGHT) as url:
        async with api(url) as orders:
            order_id, product = await place(orders, make_product)

            slow = await orders.authorize(order_id)

            assert_unavailable(slow)
            assert (await orders.get(order_id))["status"] == "PENDING"

            async def authorized_at_payments() -> bool:
                return [p["status"] for p in await payments_of(db, order_id)] == ["authorized"]

            await wait_until(authorized_at_payments)
            await reconciler.reconcile(payments.url)
            order = await orders.get(order_id)
            again = await orders.authorize(order_id)  # the shopper's retry: answered as it is
    [payment] = await payments_of(db, order_id)
    assert (order["status"], order["payment_id"], order["authorized_cents"]) == (
        "AUTHORIZED",
        payment["id"],
        1_500,
    )
    assert again.json() == order
    await invariants(db, {product: 10})


async def test_a_capture_answered_after_the_budget_is_applied_by_the_reconciler(
    payments_server, orders_server, api, db, make_product, reconciler, invariants
):
    with payments_server() as payments, orders_server(payments.url, **TIGHT) as url:
        async with api(url) as orders:
            order_id, product = await place(orders, make_product)
            assert (await orders.authorize(order_id)).json()["status"] == "AUTHORIZED"
            payments.processor = SimulatedProcessor(latency_s=SLOW_S)

            slow = await orders.capture(order_id)

            assert_unavailable(slow)
            assert (await orders.get(order_id))["status"] == "AUTHORIZED"

            async def captured_at_payments() -> bool:
                return [p["status"] for p in await payments_of(db, order_id)] == ["captured"]

            await wait_until(captured_at_payments)
            await reconciler.reconcile(payments.url)
            order = await orders.get(order_id)
    assert (order["status"], order["captured_cents"]) == ("PAID", 1_500)
    await invariants(db, {product: 10})


async def test_payments_down_during_capture_is_a_503_and_a_later_capture_charges_once(
    payments_server, orders_server, api, db, make_product, invariants
):
    port = free_port()
    with orders_server(f"http://127.0.0.1:{port}", payments_retry_attempts=3) as url:
        async with api(url) as orders:
            order_id, product = await place(orders, make_product)
            with payments_server(port=port):
                assert (await orders.authorize(order_id)).json()["status"] == "AUTHORIZED"

            down = await orders.capture(order_id)

            assert_unavailable(down)
            assert (await orders.get(order_id))["status"] == "AUTHORIZED"
            with payments_server(port=port):
                first = await orders.capture(order_id)
                second = await orders.capture(order_id)
    assert first.json()["status"] == "PAID"
    assert second.json() == first.json()
    [payment] = await payments_of(db, order_id)
    assert (payment["status"], payment["captured_cents"]) == ("captured", 1_500)
    await invariants(db, {product: 10})


@pytest.mark.parametrize("paid", [False, True], ids=["authorized", "paid"])
async def test_a_cancel_while_payments_is_down_still_cancels_and_the_reconciler_voids_or_refunds(
    payments_server, orders_server, api, db, make_product, reconciler, invariants, paid
):
    port = free_port()
    with orders_server(f"http://127.0.0.1:{port}", payments_retry_attempts=2) as url:
        async with api(url) as orders:
            order_id, product = await place(orders, make_product)
            with payments_server(port=port):
                assert (await orders.authorize(order_id)).json()["status"] == "AUTHORIZED"
                if paid:
                    assert (await orders.capture(order_id)).json()["status"] == "PAID"

            cancelled = await orders.cancel(order_id)

            assert cancelled.status_code == 200, cancelled.text
            assert cancelled.json()["status"] == "CANCELLED"
            assert await db.fetchval("SELECT stock_qty FROM inventory.products WHERE id = $1", product) == 10
            [held] = await payments_of(db, order_id)
            assert held["status"] == ("captured" if paid else "authorized")
            with payments_server(port=port) as payments:
                await reconciler.reconcile(payments.url)
            order = await orders.get(order_id)
    [payment] = await payments_of(db, order_id)
    assert payment["status"] == ("refunded" if paid else "voided")
    assert (order["captured_cents"], order["refunded_cents"]) == ((1_500, 1_500) if paid else (0, 0))
    await invariants(db, {product: 10})


async def test_a_void_slower_than_the_budget_is_finished_by_the_reconciler(
    payments_server, orders_server, api, db, make_product, reconciler, invariants
):
    with payments_server() as payments, orders_server(payments.url, **TIGHT) as url:
        async with api(url) as orders:
            order_id, product = await place(orders, make_product)
            assert (await orders.authorize(order_id)).json()["status"] == "AUTHORIZED"
            payments.processor = SimulatedProcessor(latency_s=SLOW_S)

            cancelled = await orders.cancel(order_id)

            assert cancelled.json()["status"] == "CANCELLED"
            payments.processor = SimulatedProcessor()
            await reconciler.reconcile(payments.url)
    assert [p["status"] for p in await payments_of(db, order_id)] == ["voided"]
    await invariants(db, {product: 10})


async def test_a_refund_slower_than_the_budget_is_recorded_once_by_the_reconciler_or_the_retry(
    payments_server, orders_server, api, db, make_product, reconciler, invariants
):
    with payments_server() as payments, orders_server(payments.url, **TIGHT) as url:
        async with api(url) as orders:
            order_id, product = await place(orders, make_product)
            assert (await orders.authorize(order_id)).json()["status"] == "AUTHORIZED"
            assert (await orders.capture(order_id)).json()["status"] == "PAID"
            payments.processor = SimulatedProcessor(latency_s=SLOW_S)
            key = f"refund-{uuid.uuid4()}"

            slow = await orders.refund(order_id, 400, key, "late parcel")

            assert_unavailable(slow)

            async def refunded_at_payments() -> bool:
                return await db.fetchval(
                    "SELECT count(*) = 1 FROM payments.refunds AS r JOIN payments.payments AS p"
                    " ON p.id = r.payment_id WHERE p.order_id = $1 AND r.status = 'succeeded'",
                    order_id,
                )

            await wait_until(refunded_at_payments)
            payments.processor = SimulatedProcessor()
            await reconciler.reconcile(payments.url)
            synced = await orders.get(order_id)
            retried = await orders.refund(order_id, 400, key, "late parcel")
    assert (synced["refunded_cents"], [r["amount_cents"] for r in synced["refunds"]]) == (400, [400])
    assert retried.status_code == 201, retried.text
    order = retried.json()
    assert (order["status"], order["refunded_cents"]) == ("PAID", 400)
    assert [(r["amount_cents"], r["reason"]) for r in order["refunds"]] == [(400, "late parcel")]
    await invariants(db, {product: 10})


async def test_payments_down_during_a_refund_refunds_nothing_and_the_retry_refunds_once(
    payments_server, orders_server, api, db, make_product, invariants
):
    port = free_port()
    with orders_server(f"http://127.0.0.1:{port}", payments_retry_attempts=2) as url:
        async with api(url) as orders:
            order_id, product = await place(orders, make_product)
            with payments_server(port=port):
                assert (await orders.authorize(order_id)).json()["status"] == "AUTHORIZED"
                assert (await orders.capture(order_id)).json()["status"] == "PAID"
            key = f"refund-{uuid.uuid4()}"

            down = await orders.refund(order_id, 1_500, key)

            assert_unavailable(down)
            assert (await orders.get(order_id))["refunded_cents"] == 0
            with payments_server(port=port):
                first = await orders.refund(order_id, 1_500, key)
                second = await orders.refund(order_id, 1_500, key)
    assert first.status_code == second.status_code == 201
    assert first.json()["status"] == "REFUNDED"
    assert second.headers["Idempotent-Replayed"] == "true"
    assert (
        await db.fetchval(
            "SELECT count(*) FROM payments.refunds AS r JOIN payments.payments AS p ON"
            " p.id = r.payment_id WHERE p.order_id = $1",
            order_id,
        )
        == 1
    )
    await invariants(db, {product: 10})


async def test_the_apps_own_reconciler_applies_a_lost_authorization_by_itself(
    payments_server, orders_server, api, db, make_product, invariants
):
    from prometheus_client import REGISTRY

    def applied() -> float:
        value = REGISTRY.get_sample_value(
            "lockstock_order_reconciler_fixes_total", {"kind": "authorization_applied"}
        )
        return value or 0.0

    before = applied()
    with (
        payments_server(processor_latency_s=SLOW_S) as payments,
        orders_server(payments.url, **TIGHT, reconcile_interval_s=0.2, reconcile_margin_s=0) as url,
    ):
        async with api(url) as orders:
            order_id, product = await place(orders, make_product)
            assert_unavailable(await orders.authorize(order_id))

            async def authorized() -> bool:
                return (await orders.get(order_id))["status"] == "AUTHORIZED"

            await wait_until(authorized, within_s=15)
            metrics = (await orders.client.get("/metrics")).text
    assert applied() >= before + 1
    assert 'lockstock_order_reconciler_fixes_total{kind="authorization_applied"}' in metrics
    await invariants(db, {product: 10})


async def test_another_card_while_the_first_attempt_is_unsettled_is_409_until_the_reconciler_settles_it(
    payments_server, orders_server, api, db, make_product, reconciler, invariants
):
    with payments_server(processor_latency_s=SLOW_S) as payments, orders_server(payments.url, **TIGHT) as url:
        async with api(url) as orders:
            order_id, product = await place(orders, make_product)
            assert_unavailable(await orders.authorize(order_id, GOOD_CARD))

            async def decided() -> bool:
                return [p["status"] for p in await payments_of(db, order_id)] == ["authorized"]

            await wait_until(decided)
            other = await orders.authorize(order_id, "5555 5555 5555 4444")
            assert (other.status_code, other.json()["code"]) == (409, "authorization_in_progress")
            assert "retry-after" in other.headers
            await reconciler.reconcile(payments.url)
            settled = await orders.authorize(order_id, "5555 5555 5555 4444")
    assert (settled.status_code, settled.json()["status"], settled.json()["card_last4"]) == (
        200,
        "AUTHORIZED",
        "4242",
    )
    await invariants(db, {product: 10})


class FailFirstPosts:
    """ASGI layer: the first ``failures`` POST /payments get a 502 without reaching payments."""

    def __init__(self, app: ASGIApp, failures: int) -> None:
        self.app = app
        self.failures = failures
        self.seen = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/payments":
            self.seen += 1
            if self.seen <= self.failures:
                await send({"type": "http.response.start", "status": 502, "headers": []})
                await send({"type": "http.response.body", "body": b"bad gateway"})
                return
        await self.app(scope, receive, send)


async def test_a_proxy_answering_502_twice_is_retried_with_the_same_key(
    payments_server, orders_server, api, db, make_product
):
    layers: list[FailFirstPosts] = []

    def wrap(app: ASGIApp) -> ASGIApp:
        layers.append(FailFirstPosts(app, failures=2))
        return layers[-1]

    with payments_server(wrap=wrap) as payments, orders_server(payments.url) as url:
        async with api(url) as orders:
            order_id, _ = await place(orders, make_product)

            response = await orders.authorize(order_id)

    assert response.json()["status"] == "AUTHORIZED"
    assert layers[0].seen == 3
    assert len(await payments_of(db, order_id)) == 1
    assert (
        await db.fetchval(
            "SELECT count(*) FROM payments.idempotency_keys WHERE key = $1", f"order-{order_id}-authorize-1"
        )
        == 1
    )


class HoldAnswers:
    """ASGI layer: lets payments decide ``path_suffix`` POSTs in full, then holds the answer until released
    (so the test can kill the caller between payments' answer and the caller's own update)."""

    def __init__(self, app: ASGIApp, path_suffix: str) -> None:
        self.app = app
        self.path_suffix = path_suffix
        self.answered = threading.Event()
        self.release = threading.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (
            scope["type"] == "http" and scope["method"] == "POST" and scope["path"].endswith(self.path_suffix)
        ):
            await self.app(scope, receive, send)
            return
        held: list[Message] = []

        async def hold(message: Message) -> None:
            held.append(message)

        await self.app(scope, receive, hold)
        self.answered.set()
        await asyncio.to_thread(self.release.wait, 30)
        for message in held:
            await send(message)


def start_orders_process(
    database_url: str, payments_url: str, port: int, credentials: dict[str, Any]
) -> subprocess.Popen[bytes]:
    """A real, separate orders process (uvicorn), as deployed (with orders' credentials in its env)."""
    env = {
        **os.environ,
        "ORDERS_SERVICE_TOKEN": credentials["service_token"],
        "ORDERS_CALLER_TOKENS": json.dumps(credentials["caller_tokens"]),
        "ORDERS_DATABASE_URL": database_url,
        "ORDERS_PAYMENTS_URL": payments_url,
        "ORDERS_EXPIRY_SWEEP_INTERVAL_S": "3600",
        "ORDERS_RECONCILE_INTERVAL_S": "3600",
        "ORDERS_LOG_LEVEL": "WARNING",
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "orders.app:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, timeout=30)
    except Exception:
        process.kill()
        raise
    return process


@pytest.mark.parametrize("step", ["authorize", "capture"])
async def test_an_orders_process_killed_between_payments_answer_and_its_update_is_finished_by_the_reconciler(
    payments_server,
    service_database_urls,
    credential_settings,
    api,
    db,
    make_product,
    reconciler,
    invariants,
    step,
):
    layers: list[HoldAnswers] = []

    def wrap(app: ASGIApp) -> ASGIApp:
        layers.append(HoldAnswers(app, "/payments" if step == "authorize" else "/capture"))
        return layers[-1]

    port = free_port()
    with payments_server(wrap=wrap) as payments:
        process = start_orders_process(
            service_database_urls["orders"], payments.url, port, credential_settings("orders")
        )
        try:
            async with api(f"http://127.0.0.1:{port}") as orders:
                order_id, product = await place(orders, make_product)
                if step == "capture":
                    assert (await orders.authorize(order_id)).json()["status"] == "AUTHORIZED"
                call = asyncio.create_task(getattr(orders, step)(order_id))

                async def answered() -> bool:
                    return layers[0].answered.is_set()

                await wait_until(answered)
                process.send_signal(signal.SIGKILL)  # kill -9: no shutdown, no cleanup
                process.wait(timeout=10)
                layers[0].release.set()
                with pytest.raises(httpx.TransportError):
                    await call
        finally:
            if process.poll() is None:
                process.kill()
        stranded = await db.fetchrow("SELECT status, reconcile_at FROM orders.orders WHERE id = $1", order_id)
        assert stranded["status"] == ("PENDING" if step == "authorize" else "AUTHORIZED")
        assert stranded["reconcile_at"] is not None

        await reconciler.reconcile(payments.url)

    order = await db.fetchrow(
        "SELECT status, payment_id, reconcile_at FROM orders.orders WHERE id = $1", order_id
    )
    [payment] = await payments_of(db, order_id)
    assert (order["status"], order["payment_id"]) == (
        "AUTHORIZED" if step == "authorize" else "PAID",
        payment["id"],
    )
    assert payment["status"] == ("authorized" if step == "authorize" else "captured")
    assert order["reconcile_at"] is None
    await invariants(db, {product: 10})
