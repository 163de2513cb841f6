"""The payments REST contract over real HTTP against real PostgreSQL: every route, every refusal, and the
Idempotency-Key of every POST."""

import asyncio
import sys
import threading

import httpx
import pytest

from devstack.testing import LiveServer, wait_until
from payments.app import create_app
from payments.processor import SimulatedProcessor
from payments.schemas import MAX_AMOUNT_CENTS
from payments.settings import PaymentsSettings

PAYMENT_FIELDS = {
    "payment_id",
    "order_id",
    "amount_cents",
    "captured_cents",
    "refunded_cents",
    "status",
    "failure_code",
    "card_brand",
    "card_last4",
    "authorization_expires_at",
    "created_at",
    "updated_at",
    "refunds",
}


async def rows_of(db, order_id: int) -> list:
    return await db.fetch("SELECT * FROM payments.payments WHERE order_id = $1 ORDER BY id", order_id)


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == code, body
    return body


# --- authorize -------------------------------------------------------------------------------------------


async def test_an_authorization_holds_the_amount_and_can_be_read_back(api, db):
    order_id = api.new_order_id()

    response = await api.authorize(order_id=order_id, amount_cents=2_500, card_number="4242 4242 4242 4242")

    assert response.status_code == 201, response.text
    payment = response.json()
    assert set(payment) == PAYMENT_FIELDS
    assert payment["status"] == "authorized"
    assert (payment["order_id"], payment["amount_cents"]) == (order_id, 2_500)
    assert (payment["captured_cents"], payment["refunded_cents"], payment["refunds"]) == (0, 0, [])
    assert (payment["card_brand"], payment["card_last4"], payment["failure_code"]) == ("visa", "4242", None)
    [row] = await rows_of(db, order_id)
    # PAYMENTS_AUTHORIZATION_TTL_H (168 h, a week) after the authorization
    assert (row["authorization_expires_at"] - row["created_at"]).total_seconds() == pytest.approx(
        168 * 3600, abs=60
    )
    read = await api.get(payment["payment_id"])
    assert read.json() == payment
    listed = await api.client.get("/payments", params={"order_id": order_id})
    assert listed.json() == [payment]


@pytest.mark.parametrize(
    ("card_number", "failure_code"),
    [("4000 0000 0000 0002", "card_declined"), ("4000-0000-0000-9995", "insufficient_funds")],
)
async def test_test_cards_decline_with_their_code_and_the_decline_is_a_201_answer(
    api, db, card_number, failure_code
):
    key = api.new_key()

    first = await api.authorize(card_number=card_number, key=key)
    again = await api.authorize(card_number=card_number, key=key, order_id=first.json()["order_id"])

    assert first.status_code == 201
    assert (first.json()["status"], first.json()["failure_code"]) == ("declined", failure_code)
    assert first.json()["authorization_expires_at"] is None
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert len(await rows_of(db, first.json()["order_id"])) == 1


async def test_any_other_valid_card_authorizes_whatever_the_amount(api):
    for amount_cents in (1, 1_002, 2_005, MAX_AMOUNT_CENTS):
        payment = await api.authorized(amount_cents, card_number=api.luhn_card("5555"))
        assert payment["card_brand"] == "mastercard"


@pytest.mark.parametrize(
    "card_number",
    [
        "4242 4242 4242 4241",
        "1234",
        "4242424242424242 0000",
        "not a card",
        "   ",
        "4242/4242/4242/4242",
    ],
)
async def test_a_number_that_is_not_a_card_is_422_invalid_card_and_leaves_no_trace(api, db, card_number):
    order_id, key = api.new_order_id(), api.new_key()

    response = await api.authorize(order_id=order_id, card_number=card_number, key=key)

    body = assert_problem(response, 422, "invalid_card")
    assert "4242" not in response.text
    assert body["detail"]
    assert await rows_of(db, order_id) == []
    assert await db.fetchval("SELECT count(*) FROM payments.idempotency_keys WHERE key = $1", key) == 0
    # the key stayed free: the same key with a good card authorizes
    assert (await api.authorize(order_id=order_id, key=key)).status_code == 201


@pytest.mark.parametrize(
    "body",
    [
        {"order_id": 1, "amount_cents": 0, "card_number": "4242424242424242"},
        {"order_id": 1, "amount_cents": -1, "card_number": "4242424242424242"},
        {"order_id": 1, "amount_cents": 10.5, "card_number": "4242424242424242"},
        {"order_id": 1, "amount_cents": "1000", "card_number": "4242424242424242"},
        {"order_id": 1, "amount_cents": True, "card_number": "4242424242424242"},
        {"order_id": 1, "amount_cents": MAX_AMOUNT_CENTS + 1, "card_number": "4242424242424242"},
        {"order_id": 0, "amount_cents": 1000, "card_number": "4242424242424242"},
        {"order_id": 2**63, "amount_cents": 1000, "card_number": "4242424242424242"},
        {"order_id": 1, "amount_cents": 1000, "card_number": 4242424242424242},
        {"order_id": 1, "amount_cents": 1000, "card_number": ""},
        {"order_id": 1, "amount_cents": 1000, "card_number": "4" * 65},
        {"order_id": 1, "amount_cents": 1000},
        {"amount_cents": 1000, "card_number": "4242424242424242"},
        {"order_id": 1, "amount_cents": 1000, "card_number": "4242424242424242", "currency": "usd"},
        [],
    ],
)
async def test_bad_bodies_are_422_write_nothing_and_leave_the_key_free(api, db, body):
    key = api.new_key()
    before = await db.fetchval("SELECT count(*) FROM payments.payments")

    response = await api.client.post("/payments", json=body, headers={"Idempotency-Key": key})

    assert_problem(response, 422, "validation_error")
    assert "4242424242424242" not in response.text
    assert await db.fetchval("SELECT count(*) FROM payments.payments") == before
    assert await db.fetchval("SELECT count(*) FROM payments.idempotency_keys WHERE key = $1", key) == 0


async def test_malformed_json_is_a_400(api):
    response = await api.client.post(
        "/payments",
        content=b'{"order_id": 1,',
        headers={"Idempotency-Key": api.new_key(), "Content-Type": "application/json"},
    )
    assert_problem(response, 400, "malformed_json")


# --- idempotency, for every POST -----------------------------------------------------------------------


async def test_every_post_replays_its_first_answer_byte_for_byte(api, db):
    order_id, keys = (
        api.new_order_id(),
        {name: api.new_key() for name in ("pay", "capture", "refund", "void")},
    )
    first_pay = await api.authorize(order_id=order_id, key=keys["pay"])
    payment_id = first_pay.json()["payment_id"]
    first_capture = await api.capture(payment_id, key=keys["capture"])
    first_refund = await api.refund(payment_id, 500, key=keys["refund"])
    other = await api.authorized(order_id=order_id)
    first_void = await api.void(other["payment_id"], key=keys["void"])

    replays = [
        (first_pay, await api.authorize(order_id=order_id, key=keys["pay"])),
        (first_capture, await api.capture(payment_id, key=keys["capture"])),
        (first_refund, await api.refund(payment_id, 500, key=keys["refund"])),
        (first_void, await api.void(other["payment_id"], key=keys["void"])),
    ]

    for first, again in replays:
        assert first.status_code in {200, 201}, first.text
        assert again.status_code == first.status_code
        assert again.content == first.content
        assert again.headers["idempotent-replayed"] == "true"
        assert "idempotent-replayed" not in first.headers
    assert len(await rows_of(db, order_id)) == 2
    refunds = await db.fetch("SELECT * FROM payments.refunds WHERE payment_id = $1", payment_id)
    assert [r["amount_cents"] for r in refunds] == [500]


async def test_the_same_card_written_another_way_is_the_same_request(api, db):
    order_id, key = api.new_order_id(), api.new_key()
    first = await api.authorize(order_id=order_id, card_number="4242 4242 4242 4242", key=key)

    again = await api.authorize(order_id=order_id, card_number="4242-4242-4242-4242", key=key)

    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"


async def test_every_post_refuses_its_key_with_another_request(api, db):
    order_id, key = api.new_order_id(), api.new_key()
    await api.authorize(order_id=order_id, amount_cents=2_500, key=key)
    for changed in (
        {"amount_cents": 2_600},
        {"order_id": api.new_order_id()},
        {"card_number": "5555 5555 5555 4444"},  # another brand
        {"card_number": "4000 0000 0000 0002"},  # another last four
    ):
        request = {"order_id": order_id, "amount_cents": 2_500, "key": key} | changed
        assert_problem(await api.authorize(**request), 422, "idempotency_key_reused")
    assert len(await rows_of(db, order_id)) == 1

    one, two = await api.captured(), await api.captured()
    capture_key, refund_key = api.new_key(), api.new_key()
    assert (await api.capture(one["payment_id"], key=capture_key)).status_code == 200
    assert_problem(await api.capture(two["payment_id"], key=capture_key), 422, "idempotency_key_reused")
    assert_problem(await api.void(one["payment_id"], key=capture_key), 422, "idempotency_key_reused")
    assert (await api.refund(one["payment_id"], 100, key=refund_key)).status_code == 201
    assert_problem(await api.refund(one["payment_id"], 200, key=refund_key), 422, "idempotency_key_reused")
    assert_problem(await api.refund(two["payment_id"], 100, key=refund_key), 422, "idempotency_key_reused")


async def test_every_post_requires_a_valid_key_and_writes_nothing_without_one(api, db):
    payment = await api.captured()
    payment_id = payment["payment_id"]
    order_id = api.new_order_id()

    for bad_key, code in ((api.NO_KEY, "idempotency_key_missing"), ("", "idempotency_key_invalid")):
        assert_problem(await api.authorize(order_id=order_id, key=bad_key), 400, code)
        assert_problem(await api.capture(payment_id, key=bad_key), 400, code)
        assert_problem(await api.void(payment_id, key=bad_key), 400, code)
        assert_problem(await api.refund(payment_id, 100, key=bad_key), 400, code)
    assert_problem(await api.authorize(order_id=order_id, key="k" * 256), 400, "idempotency_key_invalid")

    assert await rows_of(db, order_id) == []
    assert (await api.get(payment_id)).json() == payment
    assert (await api.authorize(order_id=order_id, key="k" * 250 + api.new_key()[-5:])).status_code == 201


class BlockingProcessor(SimulatedProcessor):
    """Blocks every processor call until the test releases it, and counts the calls."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()  # set from the test's event loop, waited on in the server's
        self.calls = 0

    async def _wait(self) -> None:
        self.calls += 1
        await asyncio.to_thread(self.release.wait, 30)


@pytest.mark.parametrize("action", ["authorize", "capture", "void", "refund"])
async def test_the_same_key_while_the_first_is_in_flight_gets_409_with_retry_after(
    controlled, controlled_api, db, action
):
    api = controlled_api
    payment = await (api.captured() if action == "refund" else api.authorized())
    requests = {
        "authorize": lambda key: api.authorize(order_id=payment["order_id"], key=key),
        "capture": lambda key: api.capture(payment["payment_id"], key=key),
        "void": lambda key: api.void(payment["payment_id"], key=key),
        "refund": lambda key: api.refund(payment["payment_id"], 700, key=key),
    }
    processor = BlockingProcessor()
    controlled.processor = processor
    key = api.new_key()
    first = asyncio.create_task(requests[action](key))
    await wait_until(lambda: asyncio.sleep(0, processor.calls == 1))

    second = await requests[action](key)

    body = assert_problem(second, 409, "idempotency_key_in_use")
    assert second.headers["retry-after"] == "1"
    assert body["detail"]
    processor.release.set()
    done = await first
    assert done.status_code in {200, 201}, done.text
    replay = await requests[action](key)
    assert replay.content == done.content
    assert processor.calls == 1


# --- capture ---------------------------------------------------------------------------------------------


async def test_capture_takes_the_full_authorized_amount_and_a_repeat_answers_it_as_it_is(api):
    payment = await api.authorized(3_000)

    captured = await api.capture(payment["payment_id"])
    again = await api.capture(payment["payment_id"])  # another key: a second caller, not a replay

    assert captured.status_code == again.status_code == 200
    assert captured.json()["status"] == "captured"
    assert captured.json()["captured_cents"] == 3_000
    assert again.json() == captured.json()
    assert "idempotent-replayed" not in again.headers
    # the capture body may be {} or absent
    no_body = await api.client.post(
        f"/payments/{payment['payment_id']}/capture", headers={"Idempotency-Key": api.new_key()}
    )
    assert no_body.json() == captured.json()
    assert_problem(
        await api.client.post(
            f"/payments/{payment['payment_id']}/capture",
            json={"amount_cents": 1},
            headers={"Idempotency-Key": api.new_key()},
        ),
        422,
        "validation_error",
    )


async def test_a_refunded_payment_captured_again_answers_as_it_is(api):
    payment = await api.captured(1_000)
    await api.refund(payment["payment_id"], 1_000)

    again = await api.capture(payment["payment_id"])

    assert again.status_code == 200
    assert (again.json()["status"], again.json()["captured_cents"]) == ("refunded", 1_000)


async def test_declined_and_voided_payments_are_not_capturable(api):
    declined = (await api.authorize(card_number="4000 0000 0000 0002")).json()
    voided = (await api.void((await api.authorized())["payment_id"])).json()

    for payment in (declined, voided):
        body = assert_problem(await api.capture(payment["payment_id"]), 409, "payment_not_capturable")
        assert body["payment_status"] == payment["status"]
        assert (await api.get(payment["payment_id"])).json() == payment


async def test_an_expired_authorization_cannot_be_captured_but_can_be_voided(api, db):
    payment = await api.authorized()
    await db.execute(
        "UPDATE payments.payments SET authorization_expires_at = now() - interval '1 second' WHERE id = $1",
        payment["payment_id"],
    )

    refused = await api.capture(payment["payment_id"])
    voided = await api.void(payment["payment_id"])

    assert_problem(refused, 409, "authorization_expired")
    assert voided.status_code == 200
    assert (voided.json()["status"], voided.json()["captured_cents"]) == ("voided", 0)


async def test_an_authorization_lapses_after_the_configured_ttl(
    service_database_urls, credential_settings, db, api
):
    settings = PaymentsSettings(
        database_url=service_database_urls["payments"],
        **credential_settings("payments"),
        authorization_ttl_h=0.2 / 3600,
    )  # 0.2 s
    with LiveServer(create_app(settings)) as server:
        api.client.base_url = httpx.URL(server.url)
        payment = await api.authorized()
        await wait_until(
            lambda: db.fetchval(
                "SELECT authorization_expires_at <= now() FROM payments.payments WHERE id = $1",
                payment["payment_id"],
            )
        )
        refused = await api.capture(payment["payment_id"])
    assert_problem(refused, 409, "authorization_expired")


async def test_unknown_payments_are_404_for_every_route(api):
    unknown = 2**62
    assert_problem(await api.get(unknown), 404, "payment_not_found")
    assert_problem(await api.capture(unknown), 404, "payment_not_found")
    assert_problem(await api.void(unknown), 404, "payment_not_found")
    assert_problem(await api.refund(unknown, 100), 404, "payment_not_found")
    for path in ("/payments/0", "/payments/abc", f"/payments/{2**63}"):
        assert_problem(await api.client.get(path), 422, "validation_error")


# --- void ------------------------------------------------------------------------------------------------


async def test_void_releases_the_authorization_and_a_repeat_answers_it_as_it_is(api):
    payment = await api.authorized()

    voided = await api.void(payment["payment_id"])
    again = await api.void(payment["payment_id"])

    assert voided.status_code == again.status_code == 200
    assert voided.json()["status"] == "voided"
    assert (voided.json()["captured_cents"], voided.json()["refunded_cents"]) == (0, 0)
    assert again.json() == voided.json()


async def test_declined_and_captured_payments_are_not_voidable(api):
    declined = (await api.authorize(card_number="4000 0000 0000 9995")).json()
    captured = await api.captured()
    refunded = await api.captured(1_000)
    await api.refund(refunded["payment_id"], 1_000)

    for payment in (declined, captured, refunded):
        assert_problem(await api.void(payment["payment_id"]), 409, "payment_not_voidable")


# --- refunds ---------------------------------------------------------------------------------------------


async def test_partial_refunds_then_the_remainder_make_the_payment_refunded(api, db):
    payment = await api.captured(10_000)
    payment_id = payment["payment_id"]

    first = await api.refund(payment_id, 2_500)
    rest = await api.refund(payment_id, 7_500)

    assert first.status_code == rest.status_code == 201
    assert set(first.json()) == {"refund_id", "amount_cents", "created_at", "payment"}
    assert first.json()["amount_cents"] == 2_500
    assert first.json()["payment"]["status"] == "partially_refunded"
    assert first.json()["payment"]["refunded_cents"] == 2_500
    final = rest.json()["payment"]
    assert (final["status"], final["captured_cents"], final["refunded_cents"]) == ("refunded", 10_000, 10_000)
    assert [r["refund_id"] for r in final["refunds"]] == [first.json()["refund_id"], rest.json()["refund_id"]]
    assert [r["amount_cents"] for r in final["refunds"]] == [2_500, 7_500]
    assert (await api.get(payment_id)).json() == final
    statuses = await db.fetch("SELECT status FROM payments.refunds WHERE payment_id = $1", payment_id)
    assert {r["status"] for r in statuses} == {"succeeded"}


async def test_a_refund_over_the_remainder_is_refused_saying_what_is_left(api):
    payment = await api.captured(1_000)
    await api.refund(payment["payment_id"], 600)

    refused = await api.refund(payment["payment_id"], 401)

    body = assert_problem(refused, 409, "refund_exceeds_captured")
    assert body["refundable_cents"] == 400
    after = (await api.get(payment["payment_id"])).json()
    assert after["refunded_cents"] == 600
    assert (await api.refund(payment["payment_id"], 400)).status_code == 201


async def test_only_captured_money_can_be_refunded(api):
    authorized = await api.authorized()
    declined = (await api.authorize(card_number="4000 0000 0000 0002")).json()
    voided = (await api.void((await api.authorized())["payment_id"])).json()
    refunded = await api.captured(100)
    await api.refund(refunded["payment_id"], 100)

    for payment in (authorized, declined, voided, refunded):
        assert_problem(await api.refund(payment["payment_id"], 100), 409, "payment_not_refundable")
    assert (await api.get(authorized["payment_id"])).json()["refunded_cents"] == 0


@pytest.mark.parametrize(
    "body",
    [{"amount_cents": 0}, {"amount_cents": -5}, {"amount_cents": "5"}, {}, {"amount_cents": 1, "x": 1}],
)
async def test_bad_refund_bodies_are_422(api, body):
    payment = await api.captured()
    response = await api.client.post(
        f"/payments/{payment['payment_id']}/refunds", json=body, headers={"Idempotency-Key": api.new_key()}
    )
    assert_problem(response, 422, "validation_error")


# --- reads -----------------------------------------------------------------------------------------------


async def test_an_orders_payments_are_listed_oldest_first_up_to_the_limit(api):
    order_id = api.new_order_id()
    declined = (await api.authorize(order_id=order_id, card_number="4000 0000 0000 0002")).json()
    authorized = await api.authorized(order_id=order_id)

    listed = await api.client.get("/payments", params={"order_id": order_id})
    limited = await api.client.get("/payments", params={"order_id": order_id, "limit": 1})

    assert [p["payment_id"] for p in listed.json()] == [declined["payment_id"], authorized["payment_id"]]
    assert [p["payment_id"] for p in limited.json()] == [declined["payment_id"]]
    assert (await api.client.get("/payments", params={"order_id": api.new_order_id()})).json() == []
    assert_problem(await api.client.get("/payments"), 422, "validation_error")
    assert_problem(
        await api.client.get("/payments", params={"order_id": order_id, "limit": 101}),
        422,
        "validation_error",
    )


async def test_charges_are_retired(api):
    assert (await api.client.get("/charges", params={"order_id": 1})).status_code == 404
    retired = await api.client.post(
        "/charges", json={"order_id": 1, "amount_cents": 100}, headers={"Idempotency-Key": api.new_key()}
    )
    assert retired.status_code in {404, 405}


# --- idempotency keys expire ------------------------------------------------------------------------------


async def test_expired_keys_are_pruned_by_the_cli(service_database_urls, db, api):
    old, fresh = api.new_key(), api.new_key()
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


async def test_the_service_prunes_expired_keys_itself(service_database_urls, db, api):
    old = api.new_key()
    await db.execute(
        "INSERT INTO payments.idempotency_keys (key, fingerprint, state, created_at)"
        " VALUES ($1, 'x', 'done', now() - interval '2 hours')",
        old,
    )
    settings = PaymentsSettings(
        database_url=service_database_urls["payments"],
        idempotency_ttl_hours=1,
        idempotency_prune_interval_s=0.05,
    )
    with LiveServer(create_app(settings)):
        await wait_until(
            lambda: db.fetchval("SELECT count(*) = 0 FROM payments.idempotency_keys WHERE key = $1", old)
        )
