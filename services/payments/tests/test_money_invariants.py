"""Money never moves twice and never beyond what was captured: real concurrent requests, a processor that
is slow or does not answer, a request that died mid-way, and a property over sequences of actions."""

import asyncio

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devstack.testing import LiveServer, wait_until
from payments.app import create_app
from payments.processor import ProcessorUnreachable, SimulatedProcessor
from payments.settings import PaymentsSettings
from servicekit.idempotency import fingerprint


async def payment_row(db, payment_id: int):
    return await db.fetchrow("SELECT * FROM payments.payments WHERE id = $1", payment_id)


class RecordingProcessor(SimulatedProcessor):
    """Records every call (operation, reference); fails the first ``unreachable`` calls of ``failing``
    as a lost connection would (the processor may or may not have acted)."""

    def __init__(self, latency_s: float = 0.0, failing: str | None = None, unreachable: int = 0) -> None:
        super().__init__(latency_s)
        self.calls: list[tuple[str, str]] = []
        self.failing, self.unreachable = failing, unreachable

    def _record(self, operation: str, reference: str) -> None:
        self.calls.append((operation, reference))
        if operation == self.failing and self.unreachable > 0:
            self.unreachable -= 1
            raise ProcessorUnreachable("connection reset by processor")

    async def authorize(self, authorization, card, amount_cents):
        outcome = await super().authorize(authorization, card, amount_cents)
        self._record("authorize", authorization)
        return outcome

    async def capture(self, authorization, amount_cents):
        await super().capture(authorization, amount_cents)
        self._record("capture", authorization)

    async def void(self, authorization):
        await super().void(authorization)
        self._record("void", authorization)

    async def refund(self, reference, authorization, amount_cents):
        await super().refund(reference, authorization, amount_cents)
        self._record("refund", reference)


# --- concurrency -----------------------------------------------------------------------------------------


async def test_ten_concurrent_refunds_of_thirty_percent_exactly_three_succeed(controlled, controlled_api, db):
    controlled.processor = SimulatedProcessor(latency_s=0.02)
    api = controlled_api
    payment = await api.captured(10_000)

    responses = await asyncio.gather(*(api.refund(payment["payment_id"], 3_000) for _ in range(10)))

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * 3 + [409] * 7, [r.text for r in responses]
    refused = [r.json() for r in responses if r.status_code == 409]
    assert {r["code"] for r in refused} == {"refund_exceeds_captured"}
    assert {r["refundable_cents"] for r in refused} == {1_000}
    row = await payment_row(db, payment["payment_id"])
    assert (row["captured_cents"], row["refunded_cents"], row["status"]) == (
        10_000,
        9_000,
        "partially_refunded",
    )
    refunds = await db.fetch("SELECT * FROM payments.refunds WHERE payment_id = $1", payment["payment_id"])
    assert len(refunds) == 3
    assert sum(r["amount_cents"] for r in refunds) == 9_000
    assert {r["status"] for r in refunds} == {"succeeded"}


async def test_capture_racing_void_exactly_one_wins(controlled, controlled_api, db):
    controlled.processor = SimulatedProcessor(latency_s=0.01)
    api = controlled_api
    winners = []
    for _ in range(10):
        payment = await api.authorized(4_000)
        payment_id = payment["payment_id"]

        captured, voided = await asyncio.gather(api.capture(payment_id), api.void(payment_id))

        assert sorted([captured.status_code, voided.status_code]) == [200, 409], (captured.text, voided.text)
        row = await payment_row(db, payment_id)
        assert row["pending_operation"] is None
        if captured.status_code == 200:
            winners.append("capture")
            assert voided.json()["code"] == "payment_not_voidable"
            assert (row["status"], row["captured_cents"]) == ("captured", 4_000)
        else:
            winners.append("void")
            assert captured.json()["code"] == "payment_not_capturable"
            assert (row["status"], row["captured_cents"]) == ("voided", 0)
    assert len(winners) == 10


async def test_twenty_concurrent_requests_with_one_new_key_make_one_payment(controlled, controlled_api, db):
    processor = RecordingProcessor(latency_s=0.05)
    controlled.processor = processor
    api = controlled_api
    order_id, key = api.new_order_id(), api.new_key()

    responses = await asyncio.gather(*(api.authorize(order_id=order_id, key=key) for _ in range(20)))

    assert {r.status_code for r in responses} <= {201, 409}
    ok = [r for r in responses if r.status_code == 201]
    assert ok
    assert len({r.json()["payment_id"] for r in ok}) == 1
    assert {r.json()["code"] for r in responses if r.status_code == 409} <= {"idempotency_key_in_use"}
    rows = await db.fetch("SELECT id FROM payments.payments WHERE order_id = $1", order_id)
    assert [r["id"] for r in rows] == [ok[0].json()["payment_id"]]
    assert processor.calls == [("authorize", f"payment-{rows[0]['id']}")]


# --- a slow or silent processor, a request that died --------------------------------------------------


async def test_a_slow_authorization_retried_with_its_key_is_answered_once_never_authorized_twice(
    controlled, controlled_api, db
):
    processor = RecordingProcessor(latency_s=0.5)
    controlled.processor = processor
    api = controlled_api
    order_id, key = api.new_order_id(), api.new_key()
    body = {"order_id": order_id, "amount_cents": 1_500, "card_number": "4242424242424242"}

    async with httpx.AsyncClient(
        base_url=controlled.url, headers=api.client.headers, timeout=0.1
    ) as impatient:
        with pytest.raises(httpx.ReadTimeout):
            await impatient.post("/payments", json=body, headers={"Idempotency-Key": key})
    while_running = await api.authorize(order_id=order_id, amount_cents=1_500, key=key)
    await wait_until(lambda: _key_done(db, key), within_s=10)
    after = await api.authorize(order_id=order_id, amount_cents=1_500, key=key)

    assert while_running.status_code == 409
    assert while_running.json()["code"] == "idempotency_key_in_use"
    assert after.status_code == 201
    assert after.headers["idempotent-replayed"] == "true"
    payment_id = after.json()["payment_id"]
    assert after.json()["status"] == "authorized"
    assert [
        r["id"] for r in await db.fetch("SELECT id FROM payments.payments WHERE order_id = $1", order_id)
    ] == [payment_id]
    assert processor.calls == [("authorize", f"payment-{payment_id}")]


async def _key_done(db, key: str) -> bool:
    return bool(await db.fetchval("SELECT state = 'done' FROM payments.idempotency_keys WHERE key = $1", key))


async def test_an_unanswered_authorization_is_503_and_its_retry_resumes_the_same_payment(
    controlled, controlled_api, db
):
    processor = RecordingProcessor(failing="authorize", unreachable=1)
    controlled.processor = processor
    api = controlled_api
    order_id, key = api.new_order_id(), api.new_key()

    lost = await api.authorize(order_id=order_id, key=key)

    assert lost.status_code == 503
    assert lost.json()["code"] == "processor_unavailable"
    assert lost.headers["retry-after"] == "1"
    [pending] = await db.fetch("SELECT * FROM payments.payments WHERE order_id = $1", order_id)
    assert pending["status"] == "pending"
    assert (await api.get(pending["id"])).json()["status"] == "pending"
    assert (await api.capture(pending["id"])).json()["code"] == "payment_pending"
    retried = await api.authorize(order_id=order_id, key=key)
    assert retried.status_code == 201
    assert (retried.json()["payment_id"], retried.json()["status"]) == (pending["id"], "authorized")
    reference = f"payment-{pending['id']}"
    assert processor.calls == [("authorize", reference), ("authorize", reference)]


async def test_a_request_that_died_mid_authorization_is_resumed_by_its_retry(controlled, controlled_api, db):
    """What a crash leaves: the payment written pending, its key claimed in flight by a process that is
    gone (its lease is long past). The retry takes the key over and finishes that payment."""
    processor = RecordingProcessor()
    controlled.processor = processor
    api = controlled_api
    order_id, key = api.new_order_id(), api.new_key()
    payment_id = await db.fetchval(
        """
        INSERT INTO payments.payments (order_id, amount_cents, card_brand, card_last4, idempotency_key)
        VALUES ($1, 900, 'visa', '4242', $2) RETURNING id
        """,
        order_id,
        key,
    )
    payload = {"order_id": order_id, "amount_cents": 900, "card_brand": "visa", "card_last4": "4242"}
    await db.execute(
        """
        INSERT INTO payments.idempotency_keys (key, fingerprint, state, created_at, locked_at)
        VALUES ($1, $2, 'in_flight', now() - interval '5 minutes', now() - interval '5 minutes')
        """,
        key,
        fingerprint("POST", "/payments", payload),
    )

    retried = await api.authorize(order_id=order_id, amount_cents=900, key=key)

    assert retried.status_code == 201, retried.text
    assert (retried.json()["payment_id"], retried.json()["status"]) == (payment_id, "authorized")
    assert len(await db.fetch("SELECT 1 FROM payments.payments WHERE order_id = $1", order_id)) == 1
    assert processor.calls == [("authorize", f"payment-{payment_id}")]


async def test_an_unanswered_capture_is_finished_by_whoever_comes_next_and_never_voided(
    controlled, controlled_api, db
):
    api = controlled_api
    payment = await api.authorized(2_000)
    payment_id = payment["payment_id"]
    processor = RecordingProcessor(failing="capture", unreachable=1)
    controlled.processor = processor

    lost = await api.capture(payment_id)

    assert lost.status_code == 503
    assert lost.json()["code"] == "processor_unavailable"
    row = await payment_row(db, payment_id)
    assert (row["status"], row["pending_operation"]) == ("authorized", "capture")
    # The capture may have reached the processor: a void now would be a lie. The void finishes the capture
    # (same reference) and refuses.
    void = await api.void(payment_id)
    assert void.json()["code"] == "payment_not_voidable"
    captured = await api.capture(payment_id)
    assert captured.status_code == 200
    assert (captured.json()["status"], captured.json()["captured_cents"]) == ("captured", 2_000)
    reference = f"payment-{payment_id}"
    assert processor.calls == [("capture", reference), ("capture", reference)]


async def test_an_unanswered_void_is_resumed_and_then_nothing_can_capture(controlled, controlled_api, db):
    api = controlled_api
    payment = await api.authorized()
    processor = RecordingProcessor(failing="void", unreachable=1)
    controlled.processor = processor

    lost = await api.void(payment["payment_id"])
    capture = await api.capture(payment["payment_id"])

    assert lost.json()["code"] == "processor_unavailable"
    assert capture.json()["code"] == "payment_not_capturable"
    row = await payment_row(db, payment["payment_id"])
    assert (row["status"], row["pending_operation"], row["captured_cents"]) == ("voided", None, 0)
    assert [op for op, _ in processor.calls] == ["void", "void"]


async def test_an_unanswered_refund_keeps_its_money_reserved_and_its_retry_finishes_it(
    controlled, controlled_api, db
):
    api = controlled_api
    payment = await api.captured(1_000)
    payment_id = payment["payment_id"]
    processor = RecordingProcessor(failing="refund", unreachable=1)
    controlled.processor = processor
    key = api.new_key()

    lost = await api.refund(payment_id, 700, key=key)
    # the 700 are spoken for while the first refund is unresolved: no other refund can take them
    other = await api.refund(payment_id, 400)
    retried = await api.refund(payment_id, 700, key=key)

    assert lost.json()["code"] == "processor_unavailable"
    assert other.json()["code"] == "refund_exceeds_captured"
    assert other.json()["refundable_cents"] == 300
    assert retried.status_code == 201
    refunds = await db.fetch("SELECT * FROM payments.refunds WHERE payment_id = $1", payment_id)
    assert [(r["id"], r["amount_cents"], r["status"]) for r in refunds] == [
        (retried.json()["refund_id"], 700, "succeeded")
    ]
    reference = f"refund-{refunds[0]['id']}"
    assert processor.calls == [("refund", reference), ("refund", reference)]
    assert retried.json()["payment"]["refunded_cents"] == 700


async def test_a_capture_and_a_refund_nobody_retries_are_finished_by_the_service_itself(
    controlled, controlled_api, db, service_database_urls, credential_settings
):
    api = controlled_api
    to_capture = await api.authorized(1_200)
    to_refund = await api.captured(1_500)
    controlled.processor = RecordingProcessor(failing="capture", unreachable=1)
    assert (await api.capture(to_capture["payment_id"])).json()["code"] == "processor_unavailable"
    controlled.processor = RecordingProcessor(failing="refund", unreachable=1)
    assert (await api.refund(to_refund["payment_id"], 500)).json()["code"] == "processor_unavailable"
    refund_id = await db.fetchval(
        "SELECT id FROM payments.refunds WHERE payment_id = $1 AND status = 'pending'",
        to_refund["payment_id"],
    )
    processor = RecordingProcessor()
    settings = PaymentsSettings(
        database_url=service_database_urls["payments"],
        **credential_settings("payments"),
        resume_interval_s=0.05,
        resume_after_s=0,
    )

    with LiveServer(create_app(settings)) as server:
        server.server.config.app.state.processor = processor
        await wait_until(
            lambda: db.fetchval(
                """
                SELECT (SELECT status FROM payments.payments WHERE id = $1) = 'captured'
                   AND (SELECT status FROM payments.refunds WHERE id = $2) = 'succeeded'
                """,
                to_capture["payment_id"],
                refund_id,
            )
        )

    captured = await payment_row(db, to_capture["payment_id"])
    assert (captured["captured_cents"], captured["pending_operation"]) == (1_200, None)
    assert ("capture", f"payment-{to_capture['payment_id']}") in processor.calls
    assert ("refund", f"refund-{refund_id}") in processor.calls
    assert (await payment_row(db, to_refund["payment_id"]))["refunded_cents"] == 500


# --- the database itself -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "breach",
    [
        "refunded_cents = captured_cents + 1",
        "captured_cents = amount_cents + 1",
        "refunded_cents = -1",
        "status = 'shipped'",
    ],
)
async def test_the_database_refuses_money_that_does_not_add_up(api, db, breach):
    import asyncpg

    payment = await api.captured(1_000)
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute(f"UPDATE payments.payments SET {breach} WHERE id = $1", payment["payment_id"])


# --- a property over sequences of actions --------------------------------------------------------------

actions = st.lists(
    st.one_of(
        st.just(("capture", 0)),
        st.just(("void", 0)),
        st.tuples(st.just("refund"), st.integers(min_value=1, max_value=1_200)),
    ),
    max_size=8,
)


@given(amount_cents=st.integers(min_value=1, max_value=1_000), steps=actions)
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
async def test_no_sequence_of_actions_refunds_more_than_captured_or_captures_more_than_authorized(
    payments_url, as_orders, migrated_admin_url, amount_cents, steps
):
    """A model of the state machine predicts each answer; the row agrees with it after every step."""
    import asyncpg

    from servicekit.db import plain_url

    db = await asyncpg.connect(plain_url(migrated_admin_url))
    try:
        async with httpx.AsyncClient(base_url=payments_url, headers=as_orders, timeout=30) as client:
            created = await client.post(
                "/payments",
                json={
                    "order_id": 987_654_321_000,
                    "amount_cents": amount_cents,
                    "card_number": "4242424242424242",
                },
                headers={"Idempotency-Key": f"property-{id(steps)}-{asyncio.get_running_loop().time()}"},
            )
            payment_id = created.json()["payment_id"]
            status, captured, refunded = "authorized", 0, 0
            for number, (action, cents) in enumerate(steps):
                path = f"/payments/{payment_id}/{'refunds' if action == 'refund' else action}"
                body = {"amount_cents": cents} if action == "refund" else {}
                response = await client.post(
                    path, json=body, headers={"Idempotency-Key": f"property-{payment_id}-{number}"}
                )
                if action == "capture":
                    expected = (
                        200 if status in {"authorized", "captured", "partially_refunded", "refunded"} else 409
                    )
                    if status == "authorized":
                        status, captured = "captured", amount_cents
                elif action == "void":
                    expected = 200 if status in {"authorized", "voided"} else 409
                    if status == "authorized":
                        status = "voided"
                elif status in {"captured", "partially_refunded"} and refunded + cents <= captured:
                    expected = 201
                    refunded += cents
                    status = "refunded" if refunded == captured else "partially_refunded"
                else:
                    expected = 409
                assert response.status_code == expected, (action, cents, response.text)
                row = await db.fetchrow("SELECT * FROM payments.payments WHERE id = $1", payment_id)
                assert 0 <= row["refunded_cents"] <= row["captured_cents"] <= row["amount_cents"]
                assert (row["status"], row["captured_cents"], row["refunded_cents"]) == (
                    status,
                    captured,
                    refunded,
                )
                refund_sum = await db.fetchval(
                    "SELECT coalesce(sum(amount_cents), 0) FROM payments.refunds WHERE payment_id = $1",
                    payment_id,
                )
                assert refund_sum == row["refunded_cents"]
    finally:
        await db.close()
