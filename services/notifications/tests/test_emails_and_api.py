"""Order emails end to end, and the API's answers to good and bad requests."""

import uuid

import httpx


async def test_an_order_email_arrives_once_with_its_event_derived_message_id(
    producer, mail_sink, workers, db, api, wait, settled, ids, order
):
    email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    order_id = ids()
    placed = await producer.emit("order.placed", order_id, order(order_id, email))
    paid = await producer.emit("order.paid", order_id, order(order_id, email, captured_cents=1_000))
    no_customer = await producer.emit("order.placed", ids(), order(ids(), None))
    with workers.start(mail_sink.url):
        await wait(lambda: settled(db, [placed, paid, no_customer], ["email", "webhooks"]), within_s=20)
    received = mail_sink.to({email})
    assert [m.kind for m in received] == ["order_placed", "order_paid"]
    assert [m.message_id for m in received] == [f"<{placed}@lockstock.local>", f"<{paid}@lockstock.local>"]
    listed = (await api.get("/emails", params={"limit": 200})).json()
    mine = [e for e in listed if e["to_address"] == email]
    assert [e["kind"] for e in mine] == ["order_paid", "order_placed"]  # latest first
    assert "Receipt" in mine[0]["subject"]
    assert "$10.00" in mine[0]["text_body"]
    assert "<table" in mine[0]["html_body"]
    effect = await db.fetchval(
        "SELECT effect FROM notifications.jobs WHERE event_id = $1 AND consumer = 'email'",
        uuid.UUID(no_customer),
    )
    assert effect == "no customer email"


async def test_a_producer_may_append_events_but_never_read_or_change_them(producer):
    import asyncpg
    import pytest

    await producer.emit("stock.low", 1, {"product_id": 1, "name": "Mug", "stock_qty": 1, "threshold": 0})
    for statement in (
        "SELECT count(*) FROM outbox.events",
        "UPDATE outbox.events SET data = '{}'",
        "DELETE FROM outbox.events",
        "SELECT count(*) FROM notifications.jobs",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await producer.orders.execute(statement)


async def test_an_endpoints_secret_is_shown_once(api, endpoints, receiver):
    created = await api.post("/webhooks/endpoints", json={"url": receiver.url, "event_types": ["order.paid"]})
    assert created.status_code == 201
    body = created.json()
    endpoints.append(body["id"])
    assert body["secret"].startswith("whsec_")
    listed = (await api.get("/webhooks/endpoints")).json()
    assert any(e["id"] == body["id"] for e in listed)
    assert all("secret" not in e for e in listed)
    assert "secret" not in (await api.get(f"/webhooks/endpoints/{body['id']}")).json()


async def test_private_and_loopback_webhook_urls_are_refused_unless_allowed(notifications_url, as_gateway):
    async with httpx.AsyncClient(base_url=notifications_url, headers=as_gateway, timeout=30) as client:
        for url in (
            "http://127.0.0.1:9/hook",
            "http://10.1.2.3/",
            "http://169.254.169.254/latest",
            "ftp://x/",
        ):
            response = await client.post("/webhooks/endpoints", json={"url": url, "event_types": ["*"]})
            assert response.status_code == 422, (url, response.text)
            assert response.json()["code"] == "webhook_url_not_allowed"


async def test_bad_requests_are_problems_with_a_code(api):
    cases = [
        (api.post("/webhooks/endpoints", json={"url": "http://x.test/", "event_types": ["order.nope"]}), 422),
        (api.post("/webhooks/endpoints", json={"url": "http://x.test/", "event_types": []}), 422),
        (api.get("/webhooks/endpoints/999999999"), 404),
        (api.delete("/webhooks/endpoints/999999999"), 404),
        (api.get("/webhooks/endpoints/999999999/deliveries"), 404),
        (api.post("/webhooks/deliveries/999999999/redeliver"), 404),
        (api.get("/sales", params={"from": "2026-02-01", "to": "2026-01-01"}), 422),
        (api.get("/sales", params={"from": "2020-01-01", "to": "2026-01-01"}), 422),
        (api.get("/sales", params={"from": "yesterday"}), 422),
        (api.get("/alerts", params={"state": "maybe"}), 422),
    ]
    for request, status in cases:
        response = await request
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"]


async def test_health_readiness_and_metrics(mail_sink, workers):
    with workers.start(mail_sink.url) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            assert (await client.get("/healthz")).status_code == 200
            assert (await client.get("/readyz")).json() == {"status": "ready"}
            metrics = (await client.get("/metrics")).text
    for name in (
        "lockstock_event_lag_seconds",
        "lockstock_event_oldest_pending_seconds",
        "lockstock_webhook_delivery_attempts_total",
        "lockstock_events_consumed_total",
    ):
        assert name in metrics
