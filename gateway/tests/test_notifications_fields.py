"""The admin's fields over the notifications worker, through the live gateway, the live services and a real
worker: outgoing mail, webhook endpoints with their delivery log and redelivery, low-stock alerts, sales.

The worker, its SMTP sink, the webhook receiver (standardwebhooks' Webhook.verify on every request) and the
event producer are services/notifications/tests/conftest.py's, loaded as tests/replicas does."""

import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from devstack.testing import LiveServer, load_module, wait_until
from gateway.app import create_app
from gateway.settings import GatewaySettings

from .conftest import Gql, error_codes

# services/notifications/tests/conftest.py: its producer, SMTP sink, webhook receiver and workers.
NOTIFICATIONS_CONFTEST = (
    Path(__file__).resolve().parents[2] / "services" / "notifications" / "tests" / "conftest.py"
)
helpers = load_module(NOTIFICATIONS_CONFTEST, "gateway_notifications_helpers")
producer = helpers.producer
mail_sink = helpers.mail_sink
receiver = helpers.receiver
workers = helpers.workers

CUSTOMER = {
    "name": "Grace Hopper",
    "address": {"line1": "1 Harbour St", "city": "Arlington", "postalCode": "22201", "country": "US"},
}


async def checkout(gql: Gql, admin_token: str, product_id: int, qty: int, email: str) -> str:
    """An order placed, authorized and captured through the gateway (order.placed, .authorized, .paid)."""
    placed = (
        await gql(
            "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) "
            "{ order { id } accessToken errors { code message } } }",
            {
                "input": {
                    "items": [{"productId": str(product_id), "qty": qty}],
                    "customer": {**CUSTOMER, "email": email},
                }
            },
        )
    )["data"]["placeOrder"]
    assert placed["order"], placed["errors"]
    order_id: str = placed["order"]["id"]
    authorized = await gql(
        "mutation($input: AuthorizePaymentInput!) { authorizePayment(input: $input) "
        "{ order { status } errors { code } } }",
        {
            "input": {
                "orderId": order_id,
                "accessToken": placed["accessToken"],
                "cardNumber": "4242424242424242",
            }
        },
    )
    assert authorized["data"]["authorizePayment"]["order"]["status"] == "AUTHORIZED", authorized
    captured = await gql(
        "mutation($id: ID!) { capturePayment(orderId: $id) { order { status } errors { code } } }",
        {"id": order_id},
        token=admin_token,
    )
    assert captured["data"]["capturePayment"]["order"]["status"] == "PAID", captured
    return order_id


async def emails_to(db: asyncpg.Connection, address: str) -> int:
    count: int = await db.fetchval("SELECT count(*) FROM notifications.emails WHERE to_address = $1", address)
    return count


EMAILS = "query($first: Int!, $after: String) { emails(first: $first, after: $after) { nodes { id kind to "
EMAILS += "subject sentAt } pageInfo { endCursor hasNextPage } } }"


async def test_the_worker_s_emails_are_listed_latest_first_paged_and_read_one_by_one(
    gql: Gql, admin_token: str, make_product: Any, mail_sink: Any, workers: Any, db: asyncpg.Connection
) -> None:
    email = f"grace-{uuid.uuid4().hex[:8]}@example.com"
    product_id = await make_product(stock=5, price_cents=1_250, name="Mail test mug")
    await checkout(gql, admin_token, product_id, 2, email)
    with workers.start(mail_sink.url):
        await wait_until(lambda: _at_least(emails_to(db, email), 2), within_s=30)

    listed = (await gql(EMAILS, {"first": 200}, token=admin_token))["data"]["emails"]
    mine = [e for e in listed["nodes"] if e["to"] == email]
    assert [e["kind"] for e in mine] == ["order_paid", "order_placed"]  # latest first
    ids = [int(e["id"]) for e in listed["nodes"]]
    assert ids == sorted(ids, reverse=True)

    first = (await gql(EMAILS, {"first": 1}, token=admin_token))["data"]["emails"]
    assert len(first["nodes"]) == 1
    assert first["pageInfo"]["hasNextPage"] is True
    older = await gql(EMAILS, {"first": 1, "after": first["pageInfo"]["endCursor"]}, token=admin_token)
    assert int(older["data"]["emails"]["nodes"][0]["id"]) < int(first["nodes"][0]["id"])

    one = await gql(
        "query($id: ID!) { email(id: $id) { id to subject textBody kind eventId } }",
        {"id": mine[1]["id"]},
        token=admin_token,
    )
    read = one["data"]["email"]
    assert (read["to"], read["kind"]) == (email, "order_placed")
    assert "$25.00" in read["textBody"]
    uuid.UUID(read["eventId"])
    for missing in ("999999999999", "nope", "0"):
        answer = await gql("query($id: ID!) { email(id: $id) { id } }", {"id": missing}, token=admin_token)
        assert answer["data"]["email"] is None, answer

    for variables in ({"first": 0}, {"first": 201}, {"first": 5, "after": "x"}):
        assert error_codes(await gql(EMAILS, variables, token=admin_token)) == ["BAD_REQUEST"]


async def _at_least(count: Any, wanted: int) -> bool:
    return bool(await count >= wanted)


ENDPOINT = (
    "query($id: ID!) { webhookEndpoint(id: $id) { id url eventTypes deliveries { id eventId eventType status "
    "attempts lastResponseCode attemptLog { attempt responseCode outcome attemptedAt } } } }"
)


async def test_a_webhook_endpoint_is_registered_delivered_to_redelivered_and_deleted(
    gql: Gql,
    admin_token: str,
    make_product: Any,
    mail_sink: Any,
    workers: Any,
    receiver: Any,
    db: asyncpg.Connection,
) -> None:
    registered = await gql(
        "mutation($url: String!, $types: [String!]!) { registerWebhookEndpoint(url: $url, "
        'eventTypes: $types, description: "test receiver") { endpoint { id url eventTypes } secret '
        "errors { code field message } } }",
        {"url": receiver.url, "types": ["order.paid"]},
        token=admin_token,
    )
    payload = registered["data"]["registerWebhookEndpoint"]
    assert payload["errors"] == []
    assert payload["secret"].startswith("whsec_")
    receiver.secret = payload["secret"]
    endpoint_id = payload["endpoint"]["id"]
    try:
        listed = await gql("{ webhookEndpoints { id url eventTypes } }", token=admin_token)
        assert {"id": endpoint_id, "url": receiver.url, "eventTypes": ["order.paid"]} in listed["data"][
            "webhookEndpoints"
        ]
        # The secret is in the registration's answer only: no other type has it.
        assert error_codes(await gql("{ webhookEndpoints { secret } }", token=admin_token)) == ["BAD_REQUEST"]

        product_id = await make_product(stock=5, price_cents=700, name="Webhook test mug")
        with workers.start(mail_sink.url):
            order_id = await checkout(
                gql, admin_token, product_id, 1, f"hook-{uuid.uuid4().hex[:8]}@example.com"
            )
            # Other tests' order.paid events not yet dispatched reach this endpoint too: follow ours.
            event_id = str(
                await db.fetchval(
                    "SELECT event_id FROM outbox.events WHERE type = 'order.paid' AND aggregate_id = $1",
                    int(order_id),
                )
            )

            async def ours() -> list[dict[str, Any]]:
                body = await gql(ENDPOINT, {"id": endpoint_id}, token=admin_token)
                return [d for d in body["data"]["webhookEndpoint"]["deliveries"] if d["eventId"] == event_id]

            async def delivered(attempts: int) -> bool:
                deliveries = await ours()
                return bool(deliveries) and deliveries[0]["attempts"] >= attempts

            await wait_until(lambda: delivered(1), within_s=30)
            (delivery,) = await ours()
            assert (delivery["eventType"], delivery["status"], delivery["lastResponseCode"]) == (
                "order.paid",
                "SUCCEEDED",
                204,
            )
            assert [(a["attempt"], a["responseCode"], a["outcome"]) for a in delivery["attemptLog"]] == [
                (1, 204, "SUCCEEDED")
            ]

            redelivered = await gql(
                "mutation($id: ID!) { redeliverWebhook(deliveryId: $id) { delivery { id status } "
                "errors { code } } }",
                {"id": delivery["id"]},
                token=admin_token,
            )
            assert redelivered["data"]["redeliverWebhook"]["errors"] == []
            await wait_until(lambda: delivered(2), within_s=30)
        (again,) = await ours()
        assert [a["attempt"] for a in again["attemptLog"]] == [1, 2]
        mine = [r for r in receiver.requests if r["id"] == event_id]
        assert [r["verified"] for r in mine] == [True, True]  # the same webhook-id both times
        assert all(r["verified"] for r in receiver.requests)
    finally:
        deleted = await gql(
            "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) { deletedId errors { code field } } }",
            {"id": endpoint_id},
            token=admin_token,
        )
    assert deleted["data"]["deleteWebhookEndpoint"] == {"deletedId": endpoint_id, "errors": []}
    listed = await gql("{ webhookEndpoints { id } }", token=admin_token)
    assert {"id": endpoint_id} not in listed["data"]["webhookEndpoints"]
    assert (await gql(ENDPOINT, {"id": endpoint_id}, token=admin_token))["data"]["webhookEndpoint"] is None

    twice = await gql(
        "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) { deletedId errors { code field } } }",
        {"id": endpoint_id},
        token=admin_token,
    )
    assert twice["data"]["deleteWebhookEndpoint"] == {
        "deletedId": None,
        "errors": [{"code": "NOT_FOUND", "field": "id"}],
    }
    redeliver = (
        "mutation($id: ID!) { redeliverWebhook(deliveryId: $id) { delivery { id } errors { code field } } }"
    )
    gone = await gql(redeliver, {"id": delivery["id"]}, token=admin_token)
    assert gone["data"]["redeliverWebhook"]["errors"] == [{"code": "WEBHOOK_ENDPOINT_DELETED", "field": None}]
    for missing in ("999999999999", "x"):
        unknown = await gql(redeliver, {"id": missing}, token=admin_token)
        assert unknown["data"]["redeliverWebhook"]["errors"] == [{"code": "NOT_FOUND", "field": "deliveryId"}]


REGISTER = (
    "mutation($url: String!, $types: [String!]!) { registerWebhookEndpoint(url: $url, eventTypes: $types) "
    "{ endpoint { id } secret errors { code field message } } }"
)


@pytest.mark.parametrize(
    ("url", "types", "code", "field"),
    [
        ("ftp://example.com/hook", ["*"], "WEBHOOK_URL_NOT_ALLOWED", "url"),
        ("https://user:pw@example.com/hook", ["*"], "WEBHOOK_URL_NOT_ALLOWED", "url"),
        ("   ", ["*"], "INVALID_INPUT", "url"),
        ("https://example.com/" + "a" * 2_000, ["*"], "INVALID_INPUT", "url"),
        ("https://example.com/hook", [], "INVALID_INPUT", "eventTypes"),
        ("https://example.com/hook", ["order.nope"], "INVALID_INPUT", "eventTypes"),
    ],
)
async def test_a_webhook_endpoint_that_cannot_be_registered_is_refused_next_to_its_field(
    gql: Gql, admin_token: str, url: str, types: list[str], code: str, field: str
) -> None:
    body = await gql(REGISTER, {"url": url, "types": types}, token=admin_token)
    payload = body["data"]["registerWebhookEndpoint"]
    assert payload["endpoint"] is None
    assert payload["secret"] is None
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [(code, field)], payload
    assert all(e["message"] for e in payload["errors"])


async def test_a_gateway_over_a_strict_worker_refuses_loopback_and_private_webhook_urls(
    gql: Gql, admin_token: str, gateway_settings: GatewaySettings, notifications_url: str
) -> None:
    strict = gateway_settings.model_copy(update={"notifications_url": notifications_url})
    with LiveServer(create_app(strict)) as server:
        for url in ("http://127.0.0.1:9/hook", "http://10.1.2.3/", "http://169.254.169.254/latest"):
            body = await gql(REGISTER, {"url": url, "types": ["*"]}, token=admin_token, url=server.url)
            payload = body["data"]["registerWebhookEndpoint"]
            assert [(e["code"], e["field"]) for e in payload["errors"]] == [
                ("WEBHOOK_URL_NOT_ALLOWED", "url")
            ]


async def test_the_event_types_are_the_worker_s(gql: Gql, admin_token: str) -> None:
    body = await gql("{ webhookEventTypes }", token=admin_token)
    types = body["data"]["webhookEventTypes"]
    assert {"order.placed", "order.paid", "stock.low"} <= set(types)


ALERTS = "{ lowStockAlerts(first: 200) { id productId productName threshold stockAtOpen stockAtClose open "
ALERTS += "openedAt closedAt } }"


async def test_low_stock_alerts_open_and_close_with_their_history(
    gql: Gql, admin_token: str, producer: Any, mail_sink: Any, workers: Any, db: asyncpg.Connection
) -> None:
    product_id = helpers.new_id()
    name = f"Alert mug {uuid.uuid4().hex[:6]}"
    low = {"product_id": product_id, "name": name, "stock_qty": 2, "threshold": 5}
    events = [await producer.emit("stock.low", product_id, low)]
    restock = {**low, "stock_qty": 30}
    events.append(await producer.emit("stock.restored", product_id, restock))
    events.append(await producer.emit("stock.low", product_id, {**low, "stock_qty": 1}))
    with workers.start(mail_sink.url):
        await wait_until(lambda: helpers.jobs_done(db, events, ["alerts"]), within_s=30)

    alerts = [
        a
        for a in (await gql(ALERTS, token=admin_token))["data"]["lowStockAlerts"]
        if a["productName"] == name
    ]
    assert [(a["open"], a["stockAtOpen"], a["stockAtClose"]) for a in alerts] == [
        (True, 1, None),
        (False, 2, 30),
    ]
    assert all(a["productId"] == str(product_id) and a["threshold"] == 5 for a in alerts)
    assert alerts[1]["closedAt"]
    assert alerts[0]["closedAt"] is None
    assert error_codes(await gql("{ lowStockAlerts(first: 0) { id } }", token=admin_token)) == ["BAD_REQUEST"]


SALES = (
    "query($from: Date, $to: Date) { salesReport(from: $from, to: $to) { from to units revenueCents "
    "refundsCents days { day units revenueCents refundsCents } topProducts { productId units revenueCents "
    "refundsCents product { name } } } }"
)


async def test_the_sales_report_counts_a_paid_order_and_answers_what_the_worker_s_api_does(
    gql: Gql,
    admin_token: str,
    make_product: Any,
    mail_sink: Any,
    workers: Any,
    db: asyncpg.Connection,
    notifications_api_url: str,
    as_gateway: dict[str, str],
) -> None:
    name = f"Sales test lamp {uuid.uuid4().hex[:6]}"
    product_id = await make_product(stock=10, price_cents=4_000_000, name=name)  # top of any test's day
    today = datetime.now(UTC).date()
    before = await gql(SALES, {"from": today.isoformat(), "to": today.isoformat()}, token=admin_token)
    revenue_before = int(before["data"]["salesReport"]["revenueCents"])
    order_id = await checkout(gql, admin_token, product_id, 3, f"sales-{uuid.uuid4().hex[:8]}@example.com")
    paid = await db.fetchval(
        "SELECT event_id FROM outbox.events WHERE type = 'order.paid' AND aggregate_id = $1", int(order_id)
    )
    with workers.start(mail_sink.url):
        await wait_until(lambda: helpers.jobs_done(db, [str(paid)], ["sales"]), within_s=30)

    report = (await gql(SALES, {}, token=admin_token))["data"]["salesReport"]
    assert (report["from"], report["to"]) == ((today - timedelta(days=29)).isoformat(), today.isoformat())
    assert len(report["days"]) == 30
    assert report["days"][-1]["day"] == today.isoformat()
    assert int(report["days"][-1]["revenueCents"]) >= revenue_before + 12_000_000
    top = next(p for p in report["topProducts"] if p["productId"] == str(product_id))
    assert (top["units"], int(top["revenueCents"]), top["product"]["name"]) == (3, 12_000_000, name)

    async with httpx.AsyncClient(base_url=notifications_api_url, headers=as_gateway, timeout=30) as api:
        direct = (await api.get("/sales", params={"from": report["from"], "to": report["to"]})).json()
    assert int(report["revenueCents"]) == direct["revenue_cents"]
    assert [(d["day"], d["units"], int(d["revenueCents"])) for d in report["days"]] == [
        (d["day"], d["units"], d["revenue_cents"]) for d in direct["days"]
    ]


@pytest.mark.parametrize(
    ("first", "last"),
    [
        ("2026-02-01", "2026-01-31"),  # from after to
        ("2025-01-01", "2026-01-02"),  # 367 days
        (None, "0001-01-10"),  # no 30 days before to
    ],
)
async def test_a_sales_range_that_is_backwards_or_too_long_is_a_bad_request(
    gql: Gql, admin_token: str, first: str | None, last: str
) -> None:
    body = await gql(SALES, {"from": first, "to": last}, token=admin_token)
    assert error_codes(body) == ["BAD_REQUEST"], body
    assert body["errors"][0]["message"]


async def test_a_sales_range_of_366_days_and_of_one_day_are_answered(gql: Gql, admin_token: str) -> None:
    last = date(2026, 1, 1)
    for first in (last - timedelta(days=365), last):
        body = await gql(SALES, {"from": first.isoformat(), "to": last.isoformat()}, token=admin_token)
        assert not body.get("errors"), body
        assert len(body["data"]["salesReport"]["days"]) == (last - first).days + 1
    assert error_codes(await gql(SALES, {"from": "yesterday"}, token=admin_token)) == ["BAD_REQUEST"]


async def test_a_worker_that_is_down_is_service_unavailable_and_leaves_the_gateway_ready(
    gql: Gql, admin_token: str, gateway_settings: GatewaySettings, http: httpx.AsyncClient
) -> None:
    from devstack.embedded import free_port

    down = gateway_settings.model_copy(update={"notifications_url": f"http://127.0.0.1:{free_port()}"})
    with LiveServer(create_app(down)) as server:
        body = await gql(EMAILS, {"first": 5}, token=admin_token, url=server.url)
        assert error_codes(body) == ["SERVICE_UNAVAILABLE"]
        assert body["errors"][0]["extensions"]["retryAfter"] >= 1
        shop = await gql("{ products(first: 1) { nodes { id } } }", url=server.url)
        assert not shop.get("errors"), shop
        ready = await http.get(f"{server.url}/readyz")
        assert ready.status_code == 200, ready.text
        assert "notifications" not in ready.json()["checks"]
