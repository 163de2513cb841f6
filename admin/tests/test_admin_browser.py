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
from servicekit.embedded import free_port
from servicekit.testing import LiveServer, screenshot_dir

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


def create_product(inventory_url: str, *, name: str, price_cents: int, stock: int) -> int:
    response = httpx.post(
        f"{inventory_url}/products", json={"name": name, "price_cents": price_cents, "stock_qty": stock}
    )
    assert response.status_code == 201, response.text
    product_id: int = response.json()["id"]
    return product_id


def place_order(orders_url: str, product_id: int, qty: int) -> dict[str, Any]:
    response = httpx.post(f"{orders_url}/orders", json={"items": [{"productId": product_id, "qty": qty}]})
    assert response.status_code == 201, response.text
    order: dict[str, Any] = response.json()
    return order


def get_product(inventory_url: str, product_id: int) -> dict[str, Any]:
    response = httpx.get(f"{inventory_url}/products/{product_id}")
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
    }

    # Edit: a negative price is refused next to the field; then a real change goes through.
    page.get_by_role("textbox", name="Price").fill("-1")
    page.get_by_role("button", name="Save changes").click()
    assert page.locator("#price-error").inner_text() == "The price cannot be negative."
    screenshot(page, "product-edit-validation")
    page.get_by_role("textbox", name="Price").fill("14.99")
    page.get_by_role("button", name="Save changes").click()
    assert page.get_by_role("status").inner_text() == f"Saved “{name}”."

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


def test_an_admin_captures_a_payment_and_the_order_shows_paid(
    page: Any, admin_ui_url: str, admin_credentials: tuple[str, str], inventory_url: str, orders_url: str
) -> None:
    product_id = create_product(inventory_url, name=unique("Ceramic mug"), price_cents=1250, stock=10)
    order = place_order(orders_url, product_id, 2)
    order_id = order["orderId"]
    sign_in(page, admin_ui_url, admin_credentials)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Orders").click()
    page.get_by_label("Status").select_option("PENDING")
    page.get_by_role("button", name="Filter").click()
    assert "status=PENDING" in page.url
    page.get_by_role("link", name=f"#{order_id}", exact=True).click()
    assert page.locator("#order-total").inner_text() == "25.00"
    assert page.locator("#order-status").inner_text() == "Pending"

    page.get_by_role("button", name="Capture payment").click()
    assert page.get_by_role("status").inner_text() == "Payment captured: the order is paid."
    assert page.locator("#order-status").inner_text() == "Paid"
    assert re.fullmatch(r"#\d+", page.locator("#charge-id").inner_text())
    assert page.get_by_role("button", name="Capture payment").count() == 0
    screenshot(page, "order-paid")

    paid = httpx.get(f"{orders_url}/orders/{order_id}").json()
    assert (paid["status"], paid["charge_id"] is not None) == ("PAID", True)

    page.goto(f"{admin_ui_url}/orders?status=PAID")
    assert page.get_by_role("link", name=f"#{order_id}", exact=True).is_visible()
    page.goto(f"{admin_ui_url}/orders?status=CANCELLED")
    assert page.get_by_role("link", name=f"#{order_id}", exact=True).count() == 0


def test_a_declined_test_amount_shows_the_decline_reason(
    page: Any, admin_ui_url: str, admin_credentials: tuple[str, str], inventory_url: str, orders_url: str
) -> None:
    # The payments simulator declines amounts ending in 02 cents with card_declined.
    product_id = create_product(inventory_url, name=unique("Linen tote"), price_cents=1002, stock=10)
    order_id = place_order(orders_url, product_id, 1)["orderId"]
    sign_in(page, admin_ui_url, admin_credentials)

    page.goto(f"{admin_ui_url}/orders/{order_id}")
    page.get_by_role("button", name="Capture payment").click()
    assert page.get_by_role("alert").inner_text() == "Payment declined: card declined."
    assert page.locator("#order-status").inner_text() == "Payment failed"
    assert "card_declined" in page.locator("#failure-reason").inner_text()
    assert page.get_by_role("button", name="Retry payment capture").is_visible()
    screenshot(page, "order-declined")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Orders").click()
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=f"#{order_id}", exact=True))
    assert "Payment failed" in row.inner_text()
    assert "Card declined" in row.inner_text()
    screenshot(page, "orders")
    page.get_by_role("link", name=f"#{order_id}", exact=True).click()

    page.get_by_role("button", name="Cancel order").click()
    assert page.get_by_role("status").inner_text() == "The order is cancelled."
    assert page.locator("#order-status").inner_text() == "Cancelled"
    assert httpx.get(f"{orders_url}/orders/{order_id}").json()["status"] == "CANCELLED"


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
    }
    assert httpx.get(f"{orders_url}/orders/{order_id}").json()["status"] == "PENDING"

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
    assert page.get_by_role("heading", level=1).inner_text() == "The shop's back office is not answering"
    assert page.locator("code").inner_text() == response.headers["x-request-id"]
    assert "Traceback" not in page.content()
