"""Hostile and careless checkout forms over real HTTP, against the live gateway and services: each gets its
messages next to the fields, keeps the cart, and places no order."""

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

GOOD = {
    "email": "grace@example.com",
    "name": "Grace Hopper",
    "line1": "1 Navy Way",
    "line2": "",
    "city": "Arlington",
    "postal_code": "22202",
    "country": "US",
    "card_number": "4242 4242 4242 4242",
}


@pytest.fixture
async def shopper(web_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=web_url, timeout=30) as http:
        yield http


def hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, name
    return found.group(1)


async def open_checkout(shopper: httpx.AsyncClient, product_id: int) -> dict[str, str]:
    """A cart with one of ``product_id`` and the checkout page's hidden fields."""
    await shopper.get("/cart")
    token = shopper.cookies["csrftoken"]
    added = await shopper.post(
        "/cart/add", data={"csrftoken": token, "product_id": str(product_id), "qty": "1"}
    )
    assert added.status_code == 303
    page = await shopper.get("/checkout")
    assert page.status_code == 200
    return {name: hidden(page.text, name) for name in ("csrftoken", "idempotency_key", "checkout_token")}


async def orders_for(db: asyncpg.Connection, product_id: int) -> int:
    count: int = await db.fetchval(
        "SELECT count(*) FROM orders.order_items WHERE product_id = $1", product_id
    )
    return count


def field_error(html: str, field: str) -> str:
    found = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>', html)
    return found.group(1) if found else ""


@pytest.mark.parametrize(
    ("changes", "messages"),
    [
        ({"email": "not an email"}, {"email": "Enter an email address like name@example.com."}),
        ({"email": "<script>@x"}, {"email": "Enter an email address like name@example.com."}),
        ({"email": "a" * 300 + "@example.com"}, {"email": "Use at most 254 characters."}),
        (
            {
                "email": "",
                "name": "",
                "line1": "",
                "city": "",
                "postal_code": "",
                "country": "",
                "card_number": "",
            },
            {
                "email": "Enter your email address, so we can tell you about your order.",
                "name": "Enter the name the parcel should be addressed to.",
                "line1": "Enter the first line of the address.",
                "city": "Enter the town or city.",
                "postal_code": "Enter the postal code.",
                "country": "Enter the country as a two-letter code, like GB or US.",
                "card_number": "Enter your card number.",
            },
        ),
        (
            {"name": "N" * 5000, "line2": "L" * 201},
            {"name": "Use at most 200 characters.", "line2": "Use at most 200 characters."},
        ),
        ({"city": "Null\x00ville"}, {"city": "This contains characters we cannot accept."}),
        ({"country": "United States"}, {"country": "Enter the country as a two-letter code, like GB or US."}),
        (
            {"card_number": "4242 4242 4242 4241"},
            {"card_number": "That card number is not valid. Please check it."},
        ),
        ({"card_number": "4242"}, {"card_number": "A card number has 12 to 19 digits."}),
        (
            {"card_number": "' OR 1=1 --"},
            {"card_number": "A card number is made of digits (spaces are fine)."},
        ),
    ],
)
async def test_bad_checkout_input_gets_messages_by_its_fields_and_orders_nothing(
    shopper: httpx.AsyncClient,
    make_product: Any,
    db: asyncpg.Connection,
    changes: dict[str, str],
    messages: dict[str, str],
) -> None:
    product_id = await make_product(stock=5, name=f"Form test {uuid.uuid4().hex[:6]}")
    form = {**await open_checkout(shopper, product_id), **GOOD, **changes}
    response = await shopper.post("/checkout", data=form)
    assert response.status_code == 422
    assert "Traceback" not in response.text
    assert "Please check the" in response.text
    for field, message in messages.items():
        assert field_error(response.text, field) == message, field
    for field in set(GOOD) - set(messages):
        assert not field_error(response.text, field), field
    # What was typed comes back (escaped), except the card number, which is never echoed into a page.
    assert 'value="4242 4242 4242 424' not in response.text
    assert "<script>@x" not in response.text
    if changes.get("city"):
        assert "Null" in response.text
    # The cart is kept, and nothing was ordered or reserved.
    assert (await shopper.get("/cart")).text.count('data-product-id="') == 1
    assert await orders_for(db, product_id) == 0
    assert await db.fetchval("SELECT stock_qty FROM inventory.products WHERE id = $1", product_id) == 5


async def test_a_good_form_places_one_order_and_opens_its_page_by_token(
    shopper: httpx.AsyncClient, make_product: Any, db: asyncpg.Connection
) -> None:
    product_id = await make_product(stock=5, price_cents=1_999)
    form = {**await open_checkout(shopper, product_id), **GOOD}
    response = await shopper.post("/checkout", data=form)
    assert response.status_code == 303
    location = response.headers["location"]
    assert re.fullmatch(r"/orders/\d+\?token=[A-Za-z0-9_\-]{43}", location)
    page = await shopper.get(location)
    assert page.status_code == 200
    assert "is authorized for $19.99" in page.text
    assert await orders_for(db, product_id) == 1
    # The card number went to payments and nowhere else: not the order, not the page.
    assert "4242424242424242" not in page.text
    customer = await db.fetchval(
        "SELECT customer::text FROM orders.orders o JOIN orders.order_items i ON i.order_id = o.id "
        "WHERE i.product_id = $1",
        product_id,
    )
    assert "grace@example.com" in customer
    assert "4242" not in customer


async def test_a_forged_pay_form_finds_no_order(shopper: httpx.AsyncClient, make_product: Any) -> None:
    await shopper.get("/cart")
    token = shopper.cookies["csrftoken"]
    for order_id, access in (("1", "A" * 43), ("abc", "A" * 43), ("1", "<script>"), ("", "")):
        response = await shopper.post(
            "/checkout/pay",
            data={
                "csrftoken": token,
                "order_id": order_id,
                "token": access,
                "card_number": GOOD["card_number"],
            },
        )
        assert response.status_code == 404, (order_id, access)
        assert "Order not found" in response.text
