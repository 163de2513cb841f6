"""The admin, used the way a person uses it: in Chromium, against the live gateway, services and database.

Screenshots of the main pages are written to docs/screenshots/ with UPDATE_SCREENSHOTS=1
(`task screenshots`), otherwise to test-results/screenshots/
admin-*.png as the tests pass through them.
"""

import base64
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import itsdangerous
import pytest

from admin.app import create_app
from admin.settings import AdminSettings
from devstack.embedded import free_port
from devstack.testing import LiveServer, screenshot_dir

SCREENSHOTS = screenshot_dir(Path(__file__).resolve().parents[2])


@pytest.fixture(autouse=True)
def _system_up_before_the_browser(
    admin_ui_url: str, admin_credentials: tuple[str, str], web_url: str, inventory_url: str, orders_url: str
) -> None:
    """Start the whole live system before the first browser page, so a test's time is its own."""


def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"admin-{name}.png"), full_page=True)


def sign_in(page: Any, admin_ui_url: str, credentials: tuple[str, str]) -> None:
    username, password = credentials
    page.goto(f"{admin_ui_url}/sign-in")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{admin_ui_url}/products")


def unique(name: str) -> str:
    return f"{name} {uuid.uuid4().hex[:6]}"


# These tests arrange and inspect state straight on the services, as the gateway would (with its credential).
AS_GATEWAY: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _call_services_as_the_gateway(as_gateway: dict[str, str]) -> None:
    AS_GATEWAY.update(as_gateway)


def create_product(inventory_url: str, *, name: str, price_cents: int, stock: int) -> int:
    response = httpx.post(
        f"{inventory_url}/products",
        json={"name": name, "price_cents": price_cents, "stock_qty": stock},
        headers=AS_GATEWAY,
    )
    assert response.status_code == 201, response.text
    product_id: int = response.json()["id"]
    return product_id


def place_order(orders_url: str, product_id: int, qty: int) -> dict[str, Any]:
    response = httpx.post(
        f"{orders_url}/orders", json={"items": [{"productId": product_id, "qty": qty}]}, headers=AS_GATEWAY
    )
    assert response.status_code == 201, response.text
    order: dict[str, Any] = response.json()
    return order


CUSTOMER = {
    "email": "margaret@example.com",
    "name": "Margaret Hamilton",
    "address": {
        "line1": "1 Apollo Way",
        "line2": "Suite 11",
        "city": "Cambridge",
        "postalCode": "02139",
        "country": "US",
    },
}


def graphql(gateway_url: str, query: str, token: str | None = None, **variables: Any) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.post(
        f"{gateway_url}/graphql", json={"query": query, "variables": variables}, headers=headers, timeout=30
    )
    body: dict[str, Any] = response.json()
    assert not body.get("errors"), body
    data: dict[str, Any] = body["data"]
    return data


def checkout(gateway_url: str, product_id: int, qty: int, card: str = "4242 4242 4242 4242") -> str:
    """An order placed and paid for as the web shop does it (placeOrder, then authorizePayment); its id."""
    placed = graphql(
        gateway_url,
        "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) "
        "{ order { id } accessToken errors { code message } } }",
        input={
            "items": [{"productId": str(product_id), "qty": qty}],
            "idempotencyKey": uuid.uuid4().hex,
            "customer": CUSTOMER,
        },
    )["placeOrder"]
    assert placed["order"], placed["errors"]
    order_id: str = placed["order"]["id"]
    graphql(
        gateway_url,
        "mutation($input: AuthorizePaymentInput!) { authorizePayment(input: $input) "
        "{ order { status } errors { code } } }",
        input={"orderId": order_id, "accessToken": placed["accessToken"], "cardNumber": card},
    )
    return order_id


def capture(gateway_url: str, admin_token: str, order_id: str) -> None:
    captured = graphql(
        gateway_url,
        "mutation($id: ID!) { capturePayment(orderId: $id) { order { status } errors { code message } } }",
        admin_token,
        id=order_id,
    )["capturePayment"]
    assert captured["order"]["status"] == "PAID", captured


def get_order(orders_url: str, order_id: str | int) -> dict[str, Any]:
    response = httpx.get(f"{orders_url}/orders/{order_id}", headers=AS_GATEWAY)
    assert response.status_code == 200, response.text
    order: dict[str, Any] = response.json()
    return order


def timeline(page: Any) -> list[str]:
    texts: list[str] = page.locator("#timeline .what").all_inner_texts()
    return texts


def get_product(inventory_url: str, product_id: int) -> dict[str, Any]:
    response = httpx.get(f"{inventory_url}/products/{product_id}", headers=AS_GATEWAY)
    assert response.status_code == 200, response.text
    product: dict[str, Any] = response.json()
    return product


@pytest.mark.parametrize("path", ["/products", "/products/new", "/products/1", "/orders", "/orders/1", "/"])
def test_admin_pages_redirect_to_sign_in_without_a_session(page: Any, admin_ui_url: str, path: str) -> None:
    page.goto(f"{admin_ui_url}{path}")
    assert page.url.startswith(f"{admin_ui_url}/sign-in")
    assert page.get_by_role("heading", name="Sign in").is_visible()


def test_a_wrong_password_is_refused_with_a_clear_message(
    page: Any, admin_ui_url: str, admin_credentials: tuple[str, str]
) -> None:
    page.goto(f"{admin_ui_url}/orders")
    screenshot(page, "sign-in")
    page.get_by_label("Username").fill(admin_credentials[0])
    page.get_by_label("Password").fill(admin_credentials[1] + "-wrong")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text() == "The username or password is not right."
    assert page.url.startswith(f"{admin_ui_url}/sign-in")
    assert page.context.cookies() == [] or all("token" not in c["value"] for c in page.context.cookies())
    page.goto(f"{admin_ui_url}/orders")
    assert page.url.startswith(f"{admin_ui_url}/sign-in")


def test_the_session_cookie_is_secure_httponly_strict_and_chromium_sends_it_to_loopback_http(
    page: Any, admin_ui_url: str, admin_credentials: tuple[str, str]
) -> None:
    sign_in(page, admin_ui_url, admin_credentials)
    (cookie,) = page.context.cookies()
    assert (cookie["secure"], cookie["httpOnly"], cookie["sameSite"]) == (True, True, "Strict")
    # Chromium treats http://127.0.0.1 as a secure context, so the Secure cookie goes back: still signed in.
    page.goto(f"{admin_ui_url}/orders")
    assert page.get_by_role("heading", name="Orders").is_visible()
    page.get_by_role("button", name="Sign out").click()
    assert page.url.startswith(f"{admin_ui_url}/sign-in")
    page.goto(f"{admin_ui_url}/orders")
    assert page.url.startswith(f"{admin_ui_url}/sign-in")


def test_an_admin_creates_a_product_and_it_appears_in_the_web_shop(
    page: Any, admin_ui_url: str, admin_credentials: tuple[str, str], web_url: str, inventory_url: str
) -> None:
    name = unique("Walnut desk lamp")
    for other, price_cents, stock in (("Linen tote bag", 1800, 0), ("Ceramic mug, sand", 1250, 48)):
        create_product(inventory_url, name=unique(other), price_cents=price_cents, stock=stock)
    sign_in(page, admin_ui_url, admin_credentials)
    page.get_by_role("link", name="New product").click()

    # Bad input gets a message next to its field, and nothing is created.
    page.get_by_label("Name").fill(name)
    page.get_by_label("Price").fill("abc")
    page.get_by_label("Units in stock").fill("10" + "0" * 20)
    page.get_by_role("button", name="Create product").click()
    assert page.locator("#price-error").inner_text() == "Enter a price like 12.50."
    assert page.locator("#stock-error").inner_text() == "Must be at most 1,000,000,000."
    assert page.get_by_label("Name").input_value() == name

    page.get_by_label("Price").fill("12.50")
    page.get_by_label("Units in stock").fill("7")
    page.get_by_role("button", name="Create product").click()
    page.wait_for_url(re.compile(r".*/products/\d+$"))
    product_id = int(page.url.rsplit("/", 1)[1])
    assert page.get_by_role("status").inner_text() == f"Created “{name}”."
    assert get_product(inventory_url, product_id) == {
        "id": product_id,
        "name": name,
        "price_cents": 1250,
        "stock_qty": 7,
        "low_stock_threshold": None,
    }

    # Edit: a negative price is refused next to the field; then a real change goes through.
    page.get_by_role("textbox", name="Price").fill("-1")
    page.get_by_role("button", name="Save changes").click()
    assert page.locator("#price-error").inner_text() == "The price cannot be negative."
    screenshot(page, "product-edit-validation")
    page.get_by_role("textbox", name="Price").fill("14.99")
    page.get_by_role("button", name="Save changes").click()
    assert page.get_by_role("status").inner_text() == f"Saved “{name}”."

    # The low-stock threshold: a bad one gets its message next to the field and is not saved; then one is.
    page.get_by_label("Low-stock alert at").fill("-3")
    page.get_by_role("button", name="Save changes").click()
    assert page.locator("#threshold-error").inner_text() == "Must be at least 0."
    assert get_product(inventory_url, product_id)["low_stock_threshold"] is None
    page.get_by_label("Low-stock alert at").fill("5")
    page.get_by_role("button", name="Save changes").click()
    assert page.get_by_role("status").inner_text() == f"Saved “{name}”."
    assert page.get_by_label("Low-stock alert at").input_value() == "5"
    assert "low-stock alert at 5" in page.locator(".heading .muted").inner_text()
    assert get_product(inventory_url, product_id)["low_stock_threshold"] == 5

    # Stock: set, then add, then a removal below zero is refused next to the field.
    page.get_by_label("Set the stock to").check()
    page.get_by_label("Units", exact=True).fill("20")
    page.get_by_role("button", name="Update stock").click()
    page.get_by_label("Add (or remove, with a minus sign)").check()
    page.get_by_label("Units", exact=True).fill("5")
    page.get_by_role("button", name="Update stock").click()
    assert page.get_by_role("status").inner_text() == f"Stock of “{name}” is now 25."
    page.get_by_label("Add (or remove, with a minus sign)").check()
    page.get_by_label("Units", exact=True).fill("-26")
    page.get_by_role("button", name="Update stock").click()
    assert page.locator("#quantity-error").is_visible()
    assert get_product(inventory_url, product_id)["price_cents"] == 1499
    assert get_product(inventory_url, product_id)["stock_qty"] == 25

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Products").click()
    while not page.get_by_role("link", name=name, exact=True).count():  # newest products are on the last page
        page.get_by_role("link", name="Next page").click()
    assert page.get_by_role("link", name=name, exact=True).is_visible()
    screenshot(page, "products")

    shop = page.context.new_page()
    shop.goto(f"{web_url}/products/{product_id}")
    assert shop.get_by_role("heading", name=name).is_visible()
    assert "14.99" in shop.content()


def test_an_admin_captures_an_authorized_order_and_it_shows_paid(
    page: Any,
    admin_ui_url: str,
    admin_credentials: tuple[str, str],
    inventory_url: str,
    orders_url: str,
    gateway_url: str,
) -> None:
    product_id = create_product(inventory_url, name=unique("Ceramic mug"), price_cents=1250, stock=10)
    order_id = checkout(gateway_url, product_id, 2)
    sign_in(page, admin_ui_url, admin_credentials)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Orders").click()
    options = page.get_by_label("Status").locator("option").all_inner_texts()
    assert options == [
        "All",
        "Pending",
        "Payment failed",
        "Authorized",
        "Paid",
        "Refunded",
        "Cancelled",
        "Expired",
    ]
    page.get_by_label("Status").select_option("AUTHORIZED")
    page.get_by_role("button", name="Filter").click()
    assert "status=AUTHORIZED" in page.url
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=f"#{order_id}", exact=True))
    assert "margaret@example.com" in row.inner_text()
    assert "Authorized" in row.inner_text()
    page.get_by_role("link", name=f"#{order_id}", exact=True).click()
    assert page.locator("#order-total").inner_text() == "25.00"
    assert page.locator("#order-status").inner_text() == "Authorized"
    assert page.locator("#customer-email").inner_text() == "margaret@example.com"
    assert "1 Apollo Way" in page.locator("#customer-address").inner_text()
    assert timeline(page) == ["Order placed 25.00", "Authorized 25.00"]
    assert "Visa ending 4242" in page.locator("#timeline").inner_text()
    assert page.get_by_role("button", name="Cancel order and void the authorization").is_visible()
    assert page.get_by_role("button", name="Refund").count() == 0
    screenshot(page, "order-authorized")

    page.get_by_role("button", name="Capture payment").click()
    assert page.get_by_role("status").inner_text() == "Payment captured: 25.00 charged, the order is paid."
    assert page.locator("#order-status").inner_text() == "Paid"
    assert page.locator("#captured").inner_text() == "25.00"
    assert timeline(page) == ["Order placed 25.00", "Authorized 25.00", "Captured 25.00"]
    assert page.get_by_role("button", name="Capture payment").count() == 0
    assert page.get_by_label("Amount to refund").input_value() == "25.00"
    assert page.get_by_role("button", name="Cancel order and refund 25.00").is_visible()
    screenshot(page, "order-paid")

    paid = get_order(orders_url, order_id)
    assert (paid["status"], paid["captured_cents"], paid["payment_id"] is not None) == ("PAID", 2500, True)

    page.goto(f"{admin_ui_url}/orders?status=PAID")
    assert page.get_by_role("link", name=f"#{order_id}", exact=True).is_visible()
    page.goto(f"{admin_ui_url}/orders?status=AUTHORIZED")
    assert page.get_by_role("link", name=f"#{order_id}", exact=True).count() == 0


def test_an_admin_refunds_part_of_a_paid_order_once_with_a_reason(
    page: Any,
    admin_ui_url: str,
    admin_credentials: tuple[str, str],
    admin_token: str,
    inventory_url: str,
    orders_url: str,
    gateway_url: str,
) -> None:
    product_id = create_product(inventory_url, name=unique("Enamel jug"), price_cents=2500, stock=5)
    order_id = checkout(gateway_url, product_id, 1)
    capture(gateway_url, admin_token, order_id)
    sign_in(page, admin_ui_url, admin_credentials)
    page.goto(f"{admin_ui_url}/orders/{order_id}")

    # Too much, and no reason: both refused next to their fields, nothing refunded.
    page.get_by_label("Amount to refund").fill("100")
    page.get_by_label("Reason").fill("")
    page.get_by_role("button", name="Refund", exact=True).click()
    assert page.locator("#amount-error").inner_text() == "The amount can be at most 25.00."
    assert page.locator("#reason-error").inner_text() == "Say why (the customer may ask)."
    page.get_by_label("Amount to refund").fill("0")
    page.get_by_role("button", name="Refund", exact=True).click()
    assert page.locator("#amount-error").inner_text() == "Refund at least 0.01."
    assert get_order(orders_url, order_id)["refunded_cents"] == 0

    page.get_by_label("Amount to refund").fill("7.50")
    page.get_by_label("Reason").fill("Dented lid")
    form = {
        name: page.locator(f'form[action$="/refund"] input[name="{name}"]').input_value()
        for name in ("csrf_token", "idempotency_key", "amount", "reason")
    }
    page.get_by_role("button", name="Refund", exact=True).click()
    assert page.get_by_role("status").inner_text() == "Refunded 7.50 (Dented lid)."
    assert page.locator("#order-status").inner_text() == "Paid"
    assert page.locator("#refunded").inner_text() == "7.50"
    assert timeline(page)[-1] == "Refunded 7.50"
    assert "Dented lid" in page.locator("#timeline .event-refunded").inner_text()
    assert page.get_by_label("Amount to refund").input_value() == "17.50"  # the default is the remainder
    assert page.get_by_role("button", name="Cancel order and refund 17.50").is_visible()
    screenshot(page, "order-refunded")

    # The same form again (a double click, the back button) refunds nothing more: one key per form.
    again = page.request.post(f"{admin_ui_url}/orders/{order_id}/refund", form=form, max_redirects=0)
    assert again.status == 303
    order = get_order(orders_url, order_id)
    assert (order["status"], order["refunded_cents"], len(order["refunds"])) == ("PAID", 750, 1)
    assert order["refunds"][0]["reason"] == "Dented lid"
    assert get_product(inventory_url, product_id)["stock_qty"] == 4  # refunds do not restock


def test_cancelling_a_paid_order_refunds_it_in_full_and_restocks(
    page: Any,
    admin_ui_url: str,
    admin_credentials: tuple[str, str],
    admin_token: str,
    inventory_url: str,
    orders_url: str,
    gateway_url: str,
) -> None:
    product_id = create_product(inventory_url, name=unique("Brass kettle"), price_cents=4000, stock=3)
    order_id = checkout(gateway_url, product_id, 2)
    capture(gateway_url, admin_token, order_id)
    assert get_product(inventory_url, product_id)["stock_qty"] == 1
    sign_in(page, admin_ui_url, admin_credentials)
    page.goto(f"{admin_ui_url}/orders/{order_id}")
    assert "Refunds the 80.00 still captured" in page.locator("#cancel-effect").inner_text()

    page.get_by_role("button", name="Cancel order and refund 80.00").click()
    assert (
        page.get_by_role("status").inner_text()
        == "The order is cancelled: 80.00 refunded to the card; its stock is back."
    )
    assert page.locator("#order-status").inner_text() == "Cancelled"
    assert page.locator("#refunded").inner_text() == "80.00"
    events = timeline(page)
    assert events[:3] == ["Order placed 80.00", "Authorized 80.00", "Captured 80.00"]
    assert "Refunded 80.00" in events
    assert "Order cancelled" in events
    assert page.get_by_role("button", name=re.compile("Cancel order")).count() == 0
    assert page.get_by_role("button", name="Refund").count() == 0
    screenshot(page, "order-cancelled-refunded")

    order = get_order(orders_url, order_id)
    assert (order["status"], order["captured_cents"], order["refunded_cents"]) == ("CANCELLED", 8000, 8000)
    assert get_product(inventory_url, product_id)["stock_qty"] == 3


def test_a_declined_card_shows_the_decline_reason_and_cancel_just_restocks(
    page: Any,
    admin_ui_url: str,
    admin_credentials: tuple[str, str],
    inventory_url: str,
    orders_url: str,
    gateway_url: str,
) -> None:
    product_id = create_product(inventory_url, name=unique("Linen tote"), price_cents=1002, stock=10)
    order_id = checkout(gateway_url, product_id, 1, card="4000 0000 0000 0002")
    sign_in(page, admin_ui_url, admin_credentials)

    page.goto(f"{admin_ui_url}/orders/{order_id}")
    assert page.locator("#order-status").inner_text() == "Payment failed"
    assert "card_declined" in page.locator("#failure-reason").inner_text()
    assert timeline(page) == ["Order placed 10.02", "Card declined 10.02"]
    assert "card declined · Visa ending 0002" in page.locator("#timeline").inner_text()
    assert page.get_by_role("button", name="Capture payment").count() == 0
    assert "nothing to void or refund" in page.locator("#cancel-effect").inner_text()
    screenshot(page, "order-declined")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Orders").click()
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=f"#{order_id}", exact=True))
    assert "Payment failed" in row.inner_text()
    assert "Card declined" in row.inner_text()
    assert "margaret@example.com" in row.inner_text()
    screenshot(page, "orders")
    page.get_by_role("link", name=f"#{order_id}", exact=True).click()

    page.get_by_role("button", name="Cancel order and restock").click()
    assert (
        page.get_by_role("status").inner_text()
        == "The order is cancelled: no card was authorized; its stock is back."
    )
    assert page.locator("#order-status").inner_text() == "Cancelled"
    assert get_order(orders_url, order_id)["status"] == "CANCELLED"
    assert get_product(inventory_url, product_id)["stock_qty"] == 10


def test_a_form_posted_without_a_csrf_token_is_refused_and_changes_nothing(
    page: Any, admin_ui_url: str, admin_credentials: tuple[str, str], inventory_url: str, orders_url: str
) -> None:
    name = unique("Brass bookend")
    product_id = create_product(inventory_url, name=name, price_cents=3000, stock=4)
    order_id = place_order(orders_url, product_id, 1)["orderId"]
    sign_in(page, admin_ui_url, admin_credentials)
    page.goto(f"{admin_ui_url}/products/{product_id}")
    token = page.locator("input[name=csrf_token]").first.input_value()

    # The browser's own request context carries the session cookie, as a forged cross-site post would.
    posts = [
        (f"/products/{product_id}", {"name": "Hijacked", "price": "0.01"}),
        (f"/products/{product_id}/stock", {"mode": "set", "quantity": "0"}),
        (f"/orders/{order_id}/cancel", {}),
        (f"/orders/{order_id}/capture", {}),
        (f"/orders/{order_id}/refund", {"amount": "1.00", "reason": "forged", "idempotency_key": "a" * 32}),
        ("/products/new", {"name": "Forged", "price": "1.00", "stock": "1"}),
    ]
    for path, form in posts:
        for forged in ({}, {"csrf_token": "forged"}, {"csrf_token": token + "x"}):
            refused = page.request.post(f"{admin_ui_url}{path}", form={**form, **forged}, max_redirects=0)
            assert refused.status == 403, (path, forged, refused.status)
            assert "Nothing was changed" in refused.text()
    assert get_product(inventory_url, product_id) == {
        "id": product_id,
        "name": name,
        "price_cents": 3000,
        "stock_qty": 3,
        "low_stock_threshold": None,
    }
    assert httpx.get(f"{orders_url}/orders/{order_id}", headers=AS_GATEWAY).json()["status"] == "PENDING"

    # The same post with this session's token goes through: the refusals above were about the token alone.
    accepted = page.request.post(
        f"{admin_ui_url}/products/{product_id}",
        form={"name": name, "price": "29.00", "csrf_token": token},
        max_redirects=0,
    )
    assert accepted.status == 303
    assert get_product(inventory_url, product_id)["price_cents"] == 2900


def test_a_session_whose_token_the_gateway_refuses_is_ended_and_sent_to_sign_in(
    context: Any, admin_ui_url: str
) -> None:
    # A session signed with the test app's key (conftest) carrying a token the gateway will not accept,
    # as an expired one would be. Starlette's session cookie: base64 JSON, signed with a timestamp.
    payload = base64.b64encode(json.dumps({"token": "expired.jwt.token", "user": "admin"}).encode())
    cookie = itsdangerous.TimestampSigner("test-admin-secret").sign(payload).decode()
    context.add_cookies([{"name": "lockstock_admin", "value": cookie, "url": admin_ui_url}])
    page = context.new_page()
    page.goto(f"{admin_ui_url}/orders")
    assert page.url.startswith(f"{admin_ui_url}/sign-in")
    assert page.get_by_role("alert").inner_text() == "Your session has ended. Please sign in again."
    page.goto(f"{admin_ui_url}/products")
    assert page.url.startswith(f"{admin_ui_url}/sign-in")


@pytest.fixture(scope="module")
def small_pages_admin_url(gateway_url: str) -> Iterator[str]:
    """An admin of its own showing two rows a page, so paging needs only a handful of rows."""
    settings = AdminSettings(gateway_url=f"{gateway_url}/graphql", secret_key="small-pages", page_size=2)
    with LiveServer(create_app(settings)) as server:
        yield server.url


def test_orders_are_paged_newest_first_and_filtered_by_status(
    small_pages_admin_url: str,
    page: Any,
    admin_credentials: tuple[str, str],
    inventory_url: str,
    orders_url: str,
) -> None:
    product_id = create_product(inventory_url, name=unique("Paging pen"), price_cents=300, stock=10)
    placed = [place_order(orders_url, product_id, 1)["orderId"] for _ in range(3)]
    sign_in(page, small_pages_admin_url, admin_credentials)

    page.goto(f"{small_pages_admin_url}/orders")
    seen: list[int] = []
    for _ in range(50):  # pages, newest first, until the oldest of ours has gone by
        links = page.get_by_role("table").get_by_role("link").all_inner_texts()
        assert len(links) <= 2
        seen += [int(text.lstrip("#")) for text in links]
        if placed[0] in seen or not page.get_by_role("link", name="Next page").count():
            break
        page.get_by_role("link", name="Next page").click()
    assert seen == sorted(seen, reverse=True)
    assert seen[:3] == placed[::-1]

    page.goto(f"{small_pages_admin_url}/orders?status=PAID")
    paid = (
        page.get_by_role("table").get_by_role("link").all_inner_texts()
        if page.get_by_role("table").count()
        else []
    )
    assert not set(paid) & {f"#{order_id}" for order_id in placed}
    page.goto(f"{small_pages_admin_url}/orders?status=SHIPPED")
    assert page.get_by_role("heading", name="Unknown status").is_visible()


def test_hand_edited_links_get_friendly_4xx_pages(
    page: Any, admin_ui_url: str, admin_credentials: tuple[str, str]
) -> None:
    sign_in(page, admin_ui_url, admin_credentials)
    for path, status, heading in [
        ("/products?after=not-a-cursor", 400, "Link not understood"),
        ("/orders?after=-1", 400, "Link not understood"),
        ("/orders?status=SHIPPED", 400, "Unknown status"),
        ("/products/999999999", 404, "Product not found"),
        ("/products/abc", 404, "Product not found"),
        ("/orders/999999999", 404, "Order not found"),
        ("/nowhere", 404, "Page not found"),
    ]:
        response = page.goto(f"{admin_ui_url}{path}")
        assert response.status == status, path
        assert page.get_by_role("heading", level=1).inner_text() == heading, path


@pytest.fixture
def admin_without_gateway() -> Iterator[str]:
    """An admin whose gateway is down: nothing listens on its port."""
    settings = AdminSettings(gateway_url=f"http://127.0.0.1:{free_port()}/graphql", secret_key="no-gateway")
    with LiveServer(create_app(settings)) as server:
        yield server.url


def test_the_gateway_down_shows_a_friendly_page_with_the_request_id(
    page: Any, admin_without_gateway: str
) -> None:
    page.goto(f"{admin_without_gateway}/sign-in")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("anything")
    with page.expect_response(lambda response: response.request.method == "POST") as posted:
        page.get_by_role("button", name="Sign in").click()
    response = posted.value
    assert response.status == 503
    assert response.headers["retry-after"] == "5"
    assert page.get_by_role("heading", level=1).inner_text() == "The shop's back office is not answering"
    assert page.locator("code").inner_text() == response.headers["x-request-id"]
    assert "Traceback" not in page.content()
