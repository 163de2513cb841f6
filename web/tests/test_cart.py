"""The cart cookie and the small rules around it: quantities, prices, stock labels, tampering."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from web.cart import (
    MAX_LINES,
    MAX_QTY_PER_LINE,
    Cart,
    FormInputError,
    Signer,
    format_price,
    parse_quantity,
    stock_label,
)

signer = Signer("unit-test-secret")
product_ids = st.integers(min_value=1, max_value=10**12).map(str)
quantities = st.integers(min_value=1, max_value=MAX_QTY_PER_LINE)
carts = st.dictionaries(product_ids, quantities, max_size=MAX_LINES).map(lambda d: Cart(tuple(d.items())))


@pytest.mark.parametrize(
    ("cents", "shown"),
    [
        (0, "$0.00"),
        (5, "$0.05"),
        (800, "$8.00"),
        (4599, "$45.99"),
        (123456789, "$1,234,567.89"),
        (-250, "-$2.50"),
    ],
)
def test_prices_are_formatted_from_cents(cents: int, shown: str) -> None:
    assert format_price(cents) == shown


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_a_formatted_price_reads_back_as_the_same_cents(cents: int) -> None:
    shown = format_price(cents)
    assert int(shown.replace("$", "").replace(",", "").replace(".", "")) == cents


@pytest.mark.parametrize(
    ("stock", "label"),
    [
        (0, "Sold out"),
        (-1, "Sold out"),
        (1, "Only 1 left"),
        (5, "Only 5 left"),
        (6, "In stock"),
        (1000, "In stock"),
    ],
)
def test_stock_labels(stock: int, label: str) -> None:
    assert stock_label(stock) == label


@pytest.mark.parametrize(
    "raw",
    ["abc", "-1", "0", "1.5", "1e3", "10" + "0" * 20, "", None, " ", "١", "+3", str(MAX_QTY_PER_LINE + 1)],
)
def test_bad_quantities_are_refused_with_a_message(raw: str | None) -> None:
    with pytest.raises(FormInputError, match=r"[Qq]uantity"):
        parse_quantity(raw)


def test_zero_is_a_quantity_only_where_it_means_remove() -> None:
    assert parse_quantity("0", allow_zero=True) == 0
    assert parse_quantity(" 7 ") == 7
    assert parse_quantity(str(MAX_QTY_PER_LINE)) == MAX_QTY_PER_LINE


@given(carts)
def test_a_cart_survives_its_cookie(cart: Cart) -> None:
    assert signer.load_cart(signer.dump_cart(cart)) == cart


@given(carts, st.integers(min_value=0, max_value=200), st.characters())
def test_a_tampered_cookie_is_an_empty_cart(cart: Cart, position: int, char: str) -> None:
    cookie = signer.dump_cart(cart)
    i = position % len(cookie)
    tampered = cookie[:i] + char + cookie[i + 1 :]
    loaded = signer.load_cart(tampered)
    assert loaded == cart or loaded == Cart()  # a no-op edit may leave it intact; never anything else


def test_a_cookie_signed_with_another_key_or_of_another_shape_is_an_empty_cart() -> None:
    assert Signer("other").load_cart(signer.dump_cart(Cart((("1", 2),)))) == Cart()
    forged_shapes = [
        {"1": 2},
        [["1", 0]],
        [["1", MAX_QTY_PER_LINE + 1]],
        [["x", 1]],
        [["1", True]],
        [["1", 1], ["1", 2]],
        "junk",
    ]
    for data in forged_shapes:
        assert signer.load_cart(signer._serializer.dumps(data, salt="lockstock.web.cart")) == Cart()
    assert signer.load_cart("") == Cart()
    assert signer.load_cart("x" * 5000) == Cart()


@given(carts, product_ids, quantities)
def test_adding_keeps_every_line_within_limits(cart: Cart, pid: str, qty: int) -> None:
    try:
        added = cart.add(pid, qty)
    except FormInputError:
        assert len(cart.lines) == MAX_LINES
        assert pid not in dict(cart.lines)
        return
    assert added.quantity_of(pid) == min(cart.quantity_of(pid) + qty, MAX_QTY_PER_LINE)
    assert all(1 <= q <= MAX_QTY_PER_LINE for _, q in added.lines)
    assert signer.load_cart(signer.dump_cart(added)) == added


def test_change_and_remove_lines() -> None:
    cart = Cart().add("1", 2).add("2", 1)
    assert cart.set_quantity("1", 5).lines == (("1", 5), ("2", 1))
    assert cart.set_quantity("1", 0).lines == (("2", 1),)
    assert cart.remove("2").lines == (("1", 2),)
    assert cart.set_quantity("9", 3) == cart
    assert cart.item_count == 3


def test_checkout_tokens_refuse_forgeries() -> None:
    cart = Cart((("1", 2),))
    token = signer.dump_checkout(cart, "a" * 32)
    assert signer.load_checkout(token) == ("a" * 32, cart)
    assert signer.load_checkout(token[:-2] + "xx") is None
    assert signer.load_checkout(signer.dump_cart(cart)) is None  # another salt
