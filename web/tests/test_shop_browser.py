"""The web shop, used the way a shopper uses it: in Chromium, against the live gateway, services and database.

Screenshots of the main pages are written to docs/screenshots/ with UPDATE_SCREENSHOTS=1
(`task screenshots`), otherwise to test-results/screenshots/
web-*.png as the tests pass through them.
"""

import asyncio
import re
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from devstack.embedded import free_port
from devstack.testing import LiveServer, screenshot_dir, wait_until
from gateway.app import create_app as create_gateway_app
from gateway.settings import GatewaySettings
from orders.app import create_app as create_orders_app
from orders.settings import OrdersSettings
from servicekit.db import plain_url
from web.app import create_app
from web.checkout import CARD_FIELD, CUSTOMER_FIELDS, TEST_CARDS
from web.settings import WebSettings

SCREENSHOTS = screenshot_dir(Path(__file__).resolve().parents[2])
DESKTOP_VIEWPORT = {"width": 1100, "height": 760}
PHONE = {"width": 375, "height": 740}
# The simulated processor's test cards.
GOOD_CARD = "4242 4242 4242 4242"
DECLINED_CARD = "4000 0000 0000 0002"
NO_FUNDS_CARD = "4000 0000 0000 9995"
ORDER_PAGE = re.compile(r"/orders/\d+\?token=[A-Za-z0-9_\-]+$")


def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"web-{name}.png"), full_page=True)


def unique(name: str) -> str:
    return f"{name} {uuid.uuid4().hex[:6]}"


# These tests arrange and inspect state straight on the services, as the gateway would (with its credential).
AS_GATEWAY: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _call_services_as_the_gateway(as_gateway: dict[str, str]) -> None:
    AS_GATEWAY.update(as_gateway)


def create_product(inventory_url: str, *, name: str, price_cents: int, stock: int) -> str:
    response = httpx.post(
        f"{inventory_url}/products",
        json={"name": name, "price_cents": price_cents, "stock_qty": stock},
        headers=AS_GATEWAY,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def fetchval(admin_url: str, sql: str, *args: Any) -> Any:
    """One value from the database, read on a thread of its own (Playwright's sync API owns this loop)."""

    async def run() -> Any:
        conn = await asyncpg.connect(plain_url(admin_url))
        try:
            return await conn.fetchval(sql, *args)
        finally:
            await conn.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, run()).result()


def wait_for(admin_url: str, sql: str, *args: Any, within_s: float = 15) -> None:
    """Polls until ``sql`` (one boolean) is true, on a thread of its own."""

    async def run() -> None:
        conn = await asyncpg.connect(plain_url(admin_url))
        try:

            async def holds() -> bool:
                return bool(await conn.fetchval(sql, *args))

            await wait_until(holds, within_s=within_s)
        finally:
            await conn.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, run()).result()


def order_of(orders_url: str, page_url: str) -> dict[str, Any]:
    """The order behind an order page's URL, as the orders service has it."""
    order_id = re.search(r"/orders/(\d+)", page_url)
    assert order_id, page_url
    response = httpx.get(f"{orders_url}/orders/{order_id.group(1)}", headers=AS_GATEWAY)
    assert response.status_code == 200, response.text
    order: dict[str, Any] = response.json()
    return order


def fill_checkout(page: Any, card: str = GOOD_CARD, email: str = "ada@example.com") -> None:
    page.get_by_label("Email").fill(email)
    page.get_by_label("Full name").fill("Ada Lovelace")
    page.get_by_label("Address line 1").fill("12 St James's Square")
    page.get_by_label("Town or city").fill("London")
    page.get_by_label("Postal code").fill("SW1Y 4JH")
    page.get_by_label("Country").fill("GB")
    page.get_by_label("Card number").fill(card)


def orders_containing(admin_url: str, product_id: str) -> int:
    count: int = fetchval(
        admin_url,
        "SELECT count(DISTINCT order_id) FROM orders.order_items WHERE product_id = $1",
        int(product_id),
    )
    return count


def stock_of(admin_url: str, product_id: str) -> int:
    stock: int = fetchval(
        admin_url, "SELECT stock_qty FROM inventory.products WHERE id = $1", int(product_id)
    )
    return stock


def open_product_list_at(page: Any, web_url: str, product_id: str) -> Any:
    """The product list page that shows ``product_id`` (following "Next page" as a shopper would);
    returns that product's stock label."""
    page.goto(f"{web_url}/")
    label = page.locator(f'.stock[data-product-id="{product_id}"]')
    for _ in range(100):
        if label.count():
            return label
        page.get_by_role("link", name="Next page").click()
    raise AssertionError(f"product {product_id} is not on the product list")


def add_to_cart(page: Any, web_url: str, product_id: str, qty: int) -> None:
    page.goto(f"{web_url}/products/{product_id}")
    page.get_by_label("Quantity").fill(str(qty))
    page.get_by_role("button", name="Add to cart").click()
    page.wait_for_url(re.compile(r"/cart"))


def test_a_shopper_buys_two_products_with_a_good_card_and_the_list_shows_less_stock(
    page: Any, context: Any, web_url: str, inventory_url: str, orders_url: str, migrated_admin_url: str
) -> None:
    kettle_name, mug_name = unique("Pour-over kettle"), unique("Travel mug")
    kettle = create_product(inventory_url, name=kettle_name, price_cents=4_599, stock=7)
    mug = create_product(inventory_url, name=mug_name, price_cents=1_250, stock=4)

    label = open_product_list_at(page, web_url, kettle)
    assert label.inner_text() == "In stock"
    assert page.get_by_role("link", name=kettle_name).is_visible()
    assert page.get_by_text("$45.99").first.is_visible()
    screenshot(page, "list")

    page.get_by_role("link", name=kettle_name).click()
    assert page.get_by_role("heading", name=kettle_name).is_visible()
    page.get_by_label("Quantity").fill("2")
    screenshot(page, "product")
    page.get_by_role("button", name="Add to cart").click()
    assert page.get_by_role("status").inner_text() == f"Added {kettle_name} to your cart."

    add_to_cart(page, web_url, mug, 1)
    page.get_by_label(f"Quantity of {mug_name}").fill("3")
    page.get_by_role("button", name=f"Update {mug_name}").click()
    page.wait_for_load_state()
    assert page.get_by_label(f"Quantity of {mug_name}").input_value() == "3"
    assert page.get_by_label(f"Quantity of {kettle_name}").input_value() == "2"
    assert page.locator("tfoot .total").inner_text() == "$129.48"  # 2 × 45.99 + 3 × 12.50
    screenshot(page, "cart")

    page.get_by_role("link", name="Check out").click()
    assert page.get_by_role("heading", name="Order summary").is_visible()
    for number, _ in TEST_CARDS:
        assert page.get_by_text(number).is_visible()  # the test cards are listed on the page
    fill_checkout(page)
    screenshot(page, "checkout")
    page.get_by_role("button", name="Place order").click()

    page.wait_for_url(ORDER_PAGE)
    assert page.get_by_role("heading", name="Thank you! Your order is placed.").is_visible()
    status = page.get_by_role("status").inner_text()
    assert "Your card ending 4242 is authorized for $129.48" in status
    assert "It will be charged when your order ships" in status
    order_number = page.locator(".order-number").inner_text()
    assert order_number.isdigit()
    rows = page.locator("table.lines tbody tr")
    assert rows.count() == 2
    assert kettle_name in rows.nth(0).inner_text()
    assert mug_name in rows.nth(1).inner_text()
    assert page.locator("tfoot .total").inner_text() == "$129.48"
    assert (page.locator("#authorized").inner_text(), page.locator("#captured").inner_text()) == (
        "$129.48",
        "$0.00",
    )
    assert "Ada Lovelace" in page.locator("address").inner_text()
    assert GOOD_CARD not in page.content()
    assert GOOD_CARD.replace(" ", "") not in page.content()
    screenshot(page, "success")
    # The cart is empty after the order.
    assert page.get_by_role("link", name="Cart", exact=True).is_visible()
    order = order_of(orders_url, page.url)
    assert (order["status"], order["authorized_cents"], order["card_last4"]) == ("AUTHORIZED", 12_948, "4242")
    assert order["customer"]["email"] == "ada@example.com"
    assert order["customer"]["address"]["country"] == "GB"

    # The page is opened by its token alone: the order number without it, or with another, is not found.
    status_url = page.url
    for path in (f"/orders/{order_number}", f"/orders/{order_number}?token={'A' * 43}"):
        response = page.goto(f"{web_url}{path}")
        assert response.status == 404, path
        assert page.get_by_role("heading", name="Order not found").is_visible()
    page.goto(status_url)
    assert page.locator("#order-status").inner_text() == "card authorized, to be charged when it ships"

    assert open_product_list_at(page, web_url, kettle).inner_text() == "Only 5 left"
    assert open_product_list_at(page, web_url, mug).inner_text() == "Only 1 left"
    assert stock_of(migrated_admin_url, kettle) == 5
    assert stock_of(migrated_admin_url, mug) == 1

    phone = context.browser.new_context(viewport=PHONE)
    try:
        phone_page = phone.new_page()
        open_product_list_at(phone_page, web_url, kettle)
        screenshot(phone_page, "phone-list")
        add_to_cart(phone_page, web_url, kettle, 1)
        screenshot(phone_page, "phone-cart")
        # Nothing is wider than the screen, the checkout form and a declined card's page included.
        assert phone_page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        phone_page.get_by_role("link", name="Check out").click()
        fill_checkout(phone_page, DECLINED_CARD)
        assert phone_page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        phone_page.get_by_role("button", name="Place order").click()
        phone_page.wait_for_url(ORDER_PAGE)
        assert phone_page.get_by_role("heading", name="Your card was declined").is_visible()
        assert phone_page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        screenshot(phone_page, "phone-declined")
    finally:
        phone.close()


def go_to_checkout(
    browser_context: Any, web_url: str, product_id: str, qty: int = 1, card: str = GOOD_CARD
) -> Any:
    """A new page at checkout with ``product_id`` in the cart and the form filled in, ready to place."""
    page = browser_context.new_page()
    add_to_cart(page, web_url, product_id, qty)
    page.get_by_role("link", name="Check out").click()
    page.get_by_role("button", name="Place order").wait_for()
    fill_checkout(page, card)
    return page


def test_two_shoppers_race_for_the_last_unit(
    browser: Any, web_url: str, inventory_url: str, migrated_admin_url: str
) -> None:
    name = unique("Last grinder")
    grinder = create_product(inventory_url, name=name, price_cents=12_900, stock=1)
    contexts = [browser.new_context(viewport=DESKTOP_VIEWPORT) for _ in range(2)]
    try:
        pages = [go_to_checkout(c, web_url, grinder) for c in contexts]
        # Both forms are submitted before either answer comes back.
        for p in pages:
            p.evaluate("document.querySelector('form.checkout').requestSubmit()")
        for p in pages:
            p.locator(".order-number, .alert-error").first.wait_for()

        won = [p for p in pages if p.locator(".order-number").count()]
        lost = [p for p in pages if p.locator(".alert-error").count()]
        assert len(won) == 1
        assert len(lost) == 1
        loser = lost[0]
        message = loser.get_by_role("alert").inner_text()
        assert "We could not place your order" in message
        assert name in message
        assert "sold out (0 left)" in message
        assert "Your cart has been kept" in message
        screenshot(loser, "out-of-stock")

        loser.get_by_role("link", name="Change your cart").click()
        assert loser.get_by_label(f"Quantity of {name}").input_value() == "1"
        assert stock_of(migrated_admin_url, grinder) == 0
        assert orders_containing(migrated_admin_url, grinder) == 1
    finally:
        for c in contexts:
            c.close()


def test_double_clicking_place_order_makes_one_order(
    context: Any, web_url: str, inventory_url: str, migrated_admin_url: str
) -> None:
    jug = create_product(inventory_url, name=unique("Milk jug"), price_cents=1_599, stock=5)
    page = go_to_checkout(context, web_url, jug, qty=2)
    key = page.locator('input[name="idempotency_key"]').input_value()
    form = {
        field: page.locator(f'form.checkout input[name="{field}"]').input_value()
        for field in ("csrftoken", "idempotency_key", "checkout_token", *CUSTOMER_FIELDS, CARD_FIELD)
    }
    cookies = {c["name"]: c["value"] for c in context.cookies()}

    def submit_again() -> httpx.Response:
        with httpx.Client(base_url=web_url, cookies=cookies, timeout=30) as http:
            return http.post("/checkout", data=form)

    # Chromium itself sends one POST for a double click, so two more copies of the same form are submitted
    # at the same moment from other connections: three concurrent submits of one checkout page.
    with ThreadPoolExecutor(max_workers=2) as pool:
        copies = [pool.submit(submit_again) for _ in range(2)]
        page.get_by_role("button", name="Place order").dblclick()
        page.wait_for_url(ORDER_PAGE)
        responses = [c.result() for c in copies]
    assert page.get_by_role("heading", name="Thank you! Your order is placed.").is_visible()
    success_path = page.url.removeprefix(web_url)
    assert [(r.status_code, r.headers.get("location")) for r in responses] == [(303, success_path)] * 2

    # The same form resubmitted later (back button, reload) replays the same order.
    again = context.request.post(f"{web_url}/checkout", form=form, max_redirects=0)
    assert again.status == 303
    assert again.headers["location"] == success_path

    assert orders_containing(migrated_admin_url, jug) == 1
    assert stock_of(migrated_admin_url, jug) == 3
    keyed = fetchval(migrated_admin_url, "SELECT count(*) FROM orders.orders WHERE idempotency_key = $1", key)
    assert keyed == 1
    # Three submits, one authorization: the card was asked once for this order.
    authorizations = fetchval(
        migrated_admin_url,
        "SELECT count(*) FROM payments.payments p JOIN orders.orders o ON o.id = p.order_id "
        "WHERE o.idempotency_key = $1",
        key,
    )
    assert authorizations == 1


def test_a_declined_card_keeps_the_reservation_and_another_card_pays(
    context: Any, web_url: str, inventory_url: str, orders_url: str, migrated_admin_url: str
) -> None:
    name = unique("Gooseneck kettle")
    kettle = create_product(inventory_url, name=name, price_cents=6_500, stock=3)
    page = go_to_checkout(context, web_url, kettle, qty=2, card=DECLINED_CARD)
    page.get_by_role("button", name="Place order").click()

    page.wait_for_url(ORDER_PAGE)
    assert page.get_by_role("heading", name="Your card was declined").is_visible()
    alert = page.get_by_role("alert").inner_text()
    assert "The card's bank declined the payment. Please try another card." in alert
    assert "Nothing has been charged" in alert
    assert re.search(
        r"reserved for 1[45] minutes( \d+ seconds?)? more \(until \d\d:\d\d:\d\d UTC\)", alert
    ), alert
    assert stock_of(migrated_admin_url, kettle) == 1  # still reserved for this order
    assert page.locator(".badge").inner_text().startswith("2")  # the cart is kept
    assert order_of(orders_url, page.url)["status"] == "PAYMENT_FAILED"
    screenshot(page, "declined")

    # A mistyped number is caught next to the field, before anything is asked of the card processor.
    page.get_by_label("Card number").fill("4242 4242 4242 4241")
    page.get_by_role("button", name="Authorize $130.00").click()
    assert (
        page.locator("#card_number-error").inner_text() == "That card number is not valid. Please check it."
    )
    assert page.get_by_label("Card number").input_value() == ""  # a card number is never echoed back

    page.get_by_label("Card number").fill(NO_FUNDS_CARD)
    page.get_by_role("button", name="Authorize $130.00").click()
    page.wait_for_load_state()
    assert "declined the payment for insufficient funds" in page.get_by_role("alert").inner_text()

    page.get_by_label("Card number").fill(GOOD_CARD)
    page.get_by_role("button", name="Authorize $130.00").click()
    page.wait_for_url(ORDER_PAGE)
    assert page.get_by_role("heading", name="Thank you! Your order is placed.").is_visible()
    assert "authorized for $130.00" in page.get_by_role("status").inner_text()
    assert page.locator(".site-header .badge").count() == 0  # the cart is emptied once the card is authorized
    order = order_of(orders_url, page.url)
    assert (order["status"], order["authorized_cents"], order["payment_attempts"]) == (
        "AUTHORIZED",
        13_000,
        3,
    )
    assert stock_of(migrated_admin_url, kettle) == 1
    assert orders_containing(migrated_admin_url, kettle) == 1


@pytest.fixture(scope="module")
def short_reservation_shop_url(
    service_database_urls: dict[str, str],
    payments_url: str,
    gateway_settings: GatewaySettings,
    credential_settings: Callable[[str], dict[str, Any]],
) -> Iterator[str]:
    """The shop over an orders service of its own whose reservations last 3 seconds (the shared one keeps
    the default 15 minutes), swept every half second; same database, payments and gateway settings."""
    orders_settings = OrdersSettings(
        database_url=service_database_urls["orders"],
        payments_url=payments_url,
        reservation_ttl_s=3,
        expiry_sweep_interval_s=0.5,
        **credential_settings("orders"),
    )
    with LiveServer(create_orders_app(orders_settings)) as orders:
        gateway = gateway_settings.model_copy(update={"orders_url": orders.url})
        with LiveServer(create_gateway_app(gateway)) as gateway_server:
            web = WebSettings(gateway_url=f"{gateway_server.url}/graphql", secret_key="short-reservations")
            with LiveServer(create_app(web)) as shop:
                yield shop.url


def test_an_expired_reservation_says_so_and_keeps_the_cart(
    short_reservation_shop_url: str, context: Any, inventory_url: str, migrated_admin_url: str
) -> None:
    shop = short_reservation_shop_url
    name = unique("Slow decider")
    product = create_product(inventory_url, name=name, price_cents=2_000, stock=2)
    page = go_to_checkout(context, shop, product, qty=1, card=DECLINED_CARD)
    page.get_by_role("button", name="Place order").click()
    page.wait_for_url(ORDER_PAGE)
    assert page.get_by_role("heading", name="Your card was declined").is_visible()
    order_id = int(page.locator(".order-number").inner_text())
    assert stock_of(migrated_admin_url, product) == 1

    # The shopper hesitates past the reservation's end, then tries a good card.
    wait_for(migrated_admin_url, "SELECT expires_at <= now() FROM orders.orders WHERE id = $1", order_id)
    page.get_by_label("Card number").fill(GOOD_CARD)
    page.get_by_role("button", name="Authorize $20.00").click()
    page.wait_for_url(ORDER_PAGE)
    assert page.get_by_role("heading", name="Your reservation has expired").is_visible()
    alert = page.get_by_role("alert").inner_text()
    assert "Nothing was charged" in alert
    assert "Your cart has been kept" in alert
    assert page.get_by_label("Card number").count() == 0
    screenshot(page, "expired")

    # The sweeper gives the stock back (once), and the cart still holds the product for another try.
    wait_for(migrated_admin_url, "SELECT stock_qty = 2 FROM inventory.products WHERE id = $1", int(product))
    wait_for(migrated_admin_url, "SELECT status = 'EXPIRED' FROM orders.orders WHERE id = $1", order_id)
    assert (
        fetchval(migrated_admin_url, "SELECT authorized_cents FROM orders.orders WHERE id = $1", order_id)
        == 0
    )
    page.get_by_role("link", name="review your cart and check out again").click()
    assert page.get_by_label(f"Quantity of {name}").input_value() == "1"


def test_a_cross_site_form_cannot_post_to_the_shop(page: Any, web_url: str, inventory_url: str) -> None:
    product = create_product(inventory_url, name=unique("Forged"), price_cents=100, stock=3)
    add_to_cart(page, web_url, product, 1)  # the shopper has a cart and the shop's cookies
    page.set_content(
        f"""<form method="post" action="{web_url}/cart/update">
              <input name="product_id" value="{product}"><input name="qty" value="0">
              <button>Win a prize</button>
            </form>"""
    )
    page.get_by_role("button", name="Win a prize").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", name="That form could not be accepted").is_visible()
    page.goto(f"{web_url}/cart")
    assert page.locator(f'tr[data-product-id="{product}"]').count() == 1


@pytest.fixture
def shop_without_gateway() -> Iterator[str]:
    settings = WebSettings(gateway_url=f"http://127.0.0.1:{free_port()}/graphql", secret_key="down-test")
    with LiveServer(create_app(settings)) as server:
        yield server.url


def test_the_gateway_down_shows_a_friendly_page_with_the_request_id(
    shop_without_gateway: str, page: Any
) -> None:
    response = page.goto(f"{shop_without_gateway}/")
    assert response.status == 503
    assert page.get_by_role("heading", name="The shop is temporarily unavailable").is_visible()
    request_id = response.headers["x-request-id"]
    assert page.locator(".request-id code").inner_text() == request_id
    assert "Traceback" not in page.content()
    screenshot(page, "gateway-down")


def test_hand_edited_links_get_friendly_4xx_pages(page: Any, web_url: str) -> None:
    for path, status in (
        ("/?after=abc", 400),
        ("/products/999999999999", 404),
        ("/orders/forged", 404),
        ("/orders/1?token=<script>", 404),
        ("/orders/1?token=" + "A" * 43, 404),
    ):
        response = page.goto(f"{web_url}{path}")
        assert response.status == status, path
        assert page.locator("h1").is_visible()
        assert "Traceback" not in page.content()


@pytest.fixture(scope="module")
def small_pages_shop_url(gateway_url: str) -> Iterator[str]:
    """The shop with two products per page, so paging shows with a handful of products."""
    settings = WebSettings(
        gateway_url=f"{gateway_url}/graphql", secret_key="paging-test", products_per_page=2
    )
    with LiveServer(create_app(settings)) as server:
        yield server.url


def test_the_product_list_pages_through_every_product_once(
    small_pages_shop_url: str, page: Any, inventory_url: str
) -> None:
    mine = [create_product(inventory_url, name=unique("Paged"), price_cents=300, stock=9) for _ in range(3)]
    page.goto(f"{small_pages_shop_url}/")
    seen: list[str] = []
    for _ in range(1_000):
        ids = page.locator(".stock[data-product-id]").evaluate_all(
            "nodes => nodes.map(n => n.dataset.productId)"
        )
        assert 1 <= len(ids) <= 2
        seen.extend(ids)
        if seen != ids:
            assert page.get_by_role("link", name="First page").is_visible()
        next_page = page.get_by_role("link", name="Next page")
        if not next_page.count():
            break
        next_page.click()
    assert len(seen) == len(set(seen))
    assert set(mine) <= set(seen)
    assert seen[-3:] == mine  # newest last: keyset paging by id


def test_the_shop_works_without_javascript_and_in_a_sensible_focus_order(
    browser: Any, web_url: str, inventory_url: str, migrated_admin_url: str
) -> None:
    name = unique("Tamper")
    tamper = create_product(inventory_url, name=name, price_cents=2_900, stock=6)
    context = browser.new_context(viewport=DESKTOP_VIEWPORT, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{web_url}/products/{tamper}")
        focused = []
        for _ in range(7):
            page.keyboard.press("Tab")
            focused.append(
                page.locator(":focus").first.get_attribute("id") or page.locator(":focus").inner_text()
            )
        assert focused[:4] == ["Skip to content", "lockstock", "Products", "Cart"]
        assert focused[5:7] == ["qty", "Add to cart"]

        page.get_by_label("Quantity").fill("2")
        page.get_by_label("Quantity").press("Enter")
        page.wait_for_url(re.compile(r"/cart"))
        page.get_by_role("link", name="Check out").click()
        fill_checkout(page)
        page.get_by_role("button", name="Place order").click()
        page.wait_for_url(ORDER_PAGE)
        assert page.get_by_role("heading", name="Thank you! Your order is placed.").is_visible()
        assert stock_of(migrated_admin_url, tamper) == 4
    finally:
        context.close()
