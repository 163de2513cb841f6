"""The admin's Outgoing mail, Webhooks, Alerts and Sales pages, used in Chromium against the live system and
a real notifications worker: an order's email arrives on Outgoing mail, a webhook registered in the admin
reaches a receiver on 127.0.0.1 that verifies its signature (standardwebhooks), Redeliver makes a second
attempt, and the sale shows on Sales.

The worker, its SMTP sink and the receiver are services/notifications/tests/conftest.py's, loaded as
tests/replicas does."""

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.testing import load_module, wait_for, wait_for_sync

from .test_admin_browser import screenshot, sign_in, unique

# services/notifications/tests/conftest.py: its producer, SMTP sink, webhook receiver and workers.
NOTIFICATIONS_CONFTEST = (
    Path(__file__).resolve().parents[2] / "services" / "notifications" / "tests" / "conftest.py"
)
helpers = load_module(NOTIFICATIONS_CONFTEST, "admin_notifications_helpers")
mail_sink = helpers.mail_sink
receiver = helpers.receiver
workers = helpers.workers


@pytest.fixture(autouse=True)
def _system_up_before_the_browser(
    admin_ui_url: str, admin_credentials: tuple[str, str], gateway_url: str, admin_token: str
) -> None:
    """Start the whole live system before the first browser page, so a test's time is its own."""


def graphql(gateway_url: str, query: str, token: str | None = None, **variables: Any) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.post(
        f"{gateway_url}/graphql", json={"query": query, "variables": variables}, headers=headers, timeout=30
    )
    body: dict[str, Any] = response.json()
    assert not body.get("errors"), body
    data: dict[str, Any] = body["data"]
    return data


def sell(gateway_url: str, admin_token: str, product_id: str, qty: int, email: str) -> str:
    """An order placed and paid for as the shop does it, then captured by the admin: its id."""
    customer = {
        "email": email,
        "name": "Katherine Johnson",
        "address": {"line1": "1 Langley Blvd", "city": "Hampton", "postalCode": "23681", "country": "US"},
    }
    placed = graphql(
        gateway_url,
        "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) "
        "{ order { id } accessToken errors { code message } } }",
        input={"items": [{"productId": product_id, "qty": qty}], "customer": customer},
    )["placeOrder"]
    assert placed["order"], placed["errors"]
    order_id: str = placed["order"]["id"]
    graphql(
        gateway_url,
        "mutation($input: AuthorizePaymentInput!) { authorizePayment(input: $input) { errors { code } } }",
        input={"orderId": order_id, "accessToken": placed["accessToken"], "cardNumber": "4242424242424242"},
    )
    captured = graphql(
        gateway_url,
        "mutation($id: ID!) { capturePayment(orderId: $id) { order { status } errors { code } } }",
        admin_token,
        id=order_id,
    )["capturePayment"]
    assert captured["order"]["status"] == "PAID", captured
    return order_id


def reload_until(page: Any, url: str, ready: Callable[[], bool], within_s: float = 30) -> None:
    """Reload ``url`` until ``ready()`` (the worker works in the background; the pages have no JavaScript
    to refresh themselves)."""

    def reloaded_ready() -> bool:
        page.goto(url)
        return ready()

    wait_for_sync(reloaded_ready, within_s=within_s, what=f"{url} to show what was awaited", every_s=0.25)


def test_an_order_s_email_and_webhook_show_in_the_admin_with_redeliver_and_the_sale_on_sales(
    page: Any,
    admin_ui_url: str,
    admin_credentials: tuple[str, str],
    gateway_url: str,
    admin_token: str,
    mail_sink: Any,
    receiver: Any,
    workers: Any,
) -> None:
    name = unique("Brass desk bell")
    created = graphql(
        gateway_url,
        "mutation($input: CreateProductInput!) { createProduct(input: $input) { product { id } } }",
        admin_token,
        input={"name": name, "priceCents": 3_500_000, "stockQty": 20},
    )
    product_id = created["createProduct"]["product"]["id"]
    email = f"katherine-{uuid.uuid4().hex[:8]}@example.com"

    with workers.start(mail_sink.url):
        sign_in(page, admin_ui_url, admin_credentials)

        # Register a webhook for paid orders; the secret is shown once.
        page.get_by_role("link", name="Webhooks").click()
        page.get_by_label("URL").fill(receiver.url)
        page.get_by_label("order.paid").check()
        page.get_by_role("button", name="Register endpoint").click()
        secret = page.locator("#secret-value").inner_text()
        assert secret.startswith("whsec_")
        assert "this once only" in page.locator("#new-secret").inner_text()
        receiver.secret = secret
        page.get_by_role("link", name="Open its delivery log").click()
        log_url = page.url
        assert secret not in page.content()
        page.goto(f"{admin_ui_url}/webhooks")
        assert secret not in page.content()
        assert page.locator("#endpoints").get_by_text(receiver.url).is_visible()
        screenshot(page, "webhooks")  # without the secret: a screenshot is no place for one

        order_id = sell(gateway_url, admin_token, product_id, 2, email)

        # The worker mails the customer: Outgoing mail lists it, and its plain text reads right.
        rows = page.locator("#emails tbody tr").filter(has_text=email)
        reload_until(page, f"{admin_ui_url}/mail", lambda: rows.count() >= 2)
        assert rows.first.inner_text().count(email) == 1
        screenshot(page, "mail")
        rows.filter(has_text="Order placed").get_by_role("link").click()
        assert page.locator("#email-to").inner_text() == email
        body = page.locator("#email-body").inner_text()
        assert f"order #{order_id}" in body
        assert "70,000.00" in body  # 2 × 35,000.00

        # The webhook reached the receiver, signed: the log shows attempt 1 and its 204.
        attempts = page.locator("#deliveries tbody tr td.attempt")
        reload_until(page, log_url, lambda: attempts.count() >= 1)
        first = page.locator("#deliveries tbody tr").first
        assert "order.paid" in first.inner_text()
        assert first.locator("td.response").inner_text() == "204"
        assert first.locator("td.attempt").inner_text() == "1"
        screenshot(page, "webhook-log")

        page.get_by_role("button", name="Redeliver").first.click()
        assert "being sent again" in page.get_by_role("status").inner_text()
        reload_until(page, log_url, lambda: attempts.count() >= 2)
        assert attempts.all_inner_texts()[:2] == ["2", "1"]  # latest attempt first
        assert page.locator("#deliveries td.response").all_inner_texts()[:2] == ["204", "204"]
        assert [r["verified"] for r in receiver.requests] == [True, True]
        assert len({r["id"] for r in receiver.requests}) == 1  # the same webhook-id, to dedupe on

    # The sale is on Sales: the chart, the day's row, the top products.
    page.get_by_role("link", name="Sales").click()
    assert page.get_by_role("heading", name="Sales").is_visible()
    assert page.locator("#sales-chart rect.bar").count() == 30
    top = page.locator("#top-products tbody tr").filter(has_text=name)
    assert "70,000.00" in top.inner_text()
    assert page.locator("#sales-days tbody tr").first.locator("td").nth(2).inner_text() != "0.00"
    assert page.locator("script").count() == 0
    screenshot(page, "sales")

    # Delete the endpoint: it leaves the list; its log is gone from the admin.
    page.get_by_role("link", name="Webhooks").click()
    endpoint_row = page.locator("#endpoints tbody tr").filter(has_text=receiver.url)
    endpoint_row.get_by_role("button", name="Delete").click()
    assert "deleted" in page.get_by_role("status").inner_text()
    assert page.locator("#endpoints tbody tr").filter(has_text=receiver.url).count() == 0


def test_a_webhook_form_with_bad_input_answers_next_to_each_field(
    page: Any, admin_ui_url: str, admin_credentials: tuple[str, str], gateway_url: str, admin_token: str
) -> None:
    before = graphql(gateway_url, "{ webhookEndpoints { id } }", admin_token)["webhookEndpoints"]
    sign_in(page, admin_ui_url, admin_credentials)
    page.goto(f"{admin_ui_url}/webhooks")
    page.get_by_label("URL").fill("ftp://example.com/hook")
    page.get_by_role("button", name="Register endpoint").click()
    assert page.locator("#url-error").inner_text() == "Enter a URL that starts with http:// or https://."
    assert page.locator("#event_types-error").inner_text() == "Choose at least one event type."
    assert page.get_by_label("URL").input_value() == "ftp://example.com/hook"

    # The worker's own refusal (a URL with credentials) lands next to the URL too.
    page.get_by_label("URL").fill("https://user:pw@example.com/hook")
    page.get_by_label("Every event type").check()
    page.get_by_role("button", name="Register endpoint").click()
    assert "cannot receive webhooks" in page.locator("#url-error").inner_text()
    assert page.get_by_label("Every event type").is_checked()
    assert page.locator("#secret-value").count() == 0
    after = graphql(gateway_url, "{ webhookEndpoints { id } }", admin_token)["webhookEndpoints"]
    assert after == before


def test_the_alerts_page_shows_open_and_closed_alerts(
    page: Any,
    admin_ui_url: str,
    admin_credentials: tuple[str, str],
    service_database_urls: dict[str, str],
    mail_sink: Any,
    workers: Any,
    migrated_admin_url: str,
) -> None:
    """The events written as inventory writes them (inventory_svc inserting into outbox.events)."""
    import asyncpg

    from servicekit.db import plain_url
    from servicekit.sync import run_sync

    product_id = helpers.new_id()
    name = unique("Alert lantern")
    low = {"product_id": product_id, "name": name, "stock_qty": 2, "threshold": 5}

    async def emit_and_settle() -> None:
        inventory = await asyncpg.connect(plain_url(service_database_urls["inventory"]))
        orders = await asyncpg.connect(plain_url(service_database_urls["orders"]))
        admin = await asyncpg.connect(plain_url(migrated_admin_url))
        try:
            producer = helpers.Producer(orders, inventory)
            events = [
                await producer.emit("stock.low", product_id, low),
                await producer.emit("stock.restored", product_id, {**low, "stock_qty": 40}),
                await producer.emit("stock.low", product_id, {**low, "stock_qty": 1}),
            ]
            with workers.start(mail_sink.url):
                await wait_for(
                    lambda: helpers.jobs_done(admin, events, ["alerts"]),
                    within_s=30,
                    what="the worker to handle the alerts",
                    every_s=0.1,
                )
        finally:
            for conn in (inventory, orders, admin):
                await conn.close()

    run_sync(emit_and_settle())
    sign_in(page, admin_ui_url, admin_credentials)
    page.get_by_role("link", name="Alerts").click()
    open_row = page.locator("#open-alerts tbody tr").filter(has_text=name)
    closed_row = page.locator("#closed-alerts tbody tr").filter(has_text=name)
    assert open_row.count() == 1
    assert closed_row.count() == 1
    assert open_row.locator("td").nth(2).inner_text() == "1"
    assert closed_row.locator("td").nth(4).inner_text() == "40"
    screenshot(page, "alerts")
