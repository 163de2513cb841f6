"""What an admin types into the price and stock fields: exact cents or a message, never an exception."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from admin.money import MAX_PRICE_CENTS, MAX_STOCK, FieldError, format_cents, parse_int, parse_price

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("typed", "cents"),
    [
        ("12.50", 1250),
        ("12.5", 1250),
        ("12", 1200),
        ("0", 0),
        (" 0.01 ", 1),
        ("1,234.56", 123456),
        ("10.02", 1002),
    ],
)
def test_prices_are_converted_to_exact_cents(typed: str, cents: int) -> None:
    assert parse_price(typed) == cents


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "Enter a price."),
        ("   ", "Enter a price."),
        ("abc", "Enter a price like 12.50."),
        ("NaN", "Enter a price like 12.50."),
        ("Infinity", "Enter a price like 12.50."),
        ("1e3x", "Enter a price like 12.50."),
        ("-1", "The price cannot be negative."),
        ("1.005", "Use at most two decimal places."),
        ("100000000000000000000", "The price can be at most 100,000,000.00."),
        ("1e20", "The price can be at most 100,000,000.00."),
        ("9" * 100, "Enter a price like 12.50."),
        # Finite Decimals that no arithmetic context holds: times 100 they overflow or underflow.
        ("1e999999", "The price can be at most 100,000,000.00."),
        ("9E+999999999", "The price can be at most 100,000,000.00."),
        ("1e-999999999", "Use at most two decimal places."),
        ("-1e999999", "The price cannot be negative."),
    ],
)
def test_bad_prices_get_a_message_for_the_field(typed: str, message: str) -> None:
    with pytest.raises(FieldError) as refused:
        parse_price(typed)
    assert refused.value.message == message


@given(st.integers(min_value=0, max_value=MAX_PRICE_CENTS))
def test_formatted_price_parses_back_to_the_same_cents(cents: int) -> None:
    assert parse_price(format_cents(cents)) == cents


@given(st.text(max_size=40))
def test_any_typed_price_is_cents_in_range_or_a_field_error(typed: str) -> None:
    try:
        cents = parse_price(typed)
    except FieldError:
        return
    assert 0 <= cents <= MAX_PRICE_CENTS
    assert Decimal(cents) / 100 == Decimal(typed.strip().replace(",", ""))


@given(
    st.builds(
        lambda mantissa, exponent: f"{mantissa}e{exponent}",
        st.decimals(allow_nan=False, allow_infinity=False, places=3, min_value=-(10**6), max_value=10**6),
        st.integers(min_value=-(10**12), max_value=10**12),
    )
)
def test_any_exponent_is_cents_in_range_or_a_field_error(typed: str) -> None:
    try:
        cents = parse_price(typed)
    except FieldError:
        return
    assert 0 <= cents <= MAX_PRICE_CENTS


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "Enter a whole number."),
        ("abc", "Enter a whole number, like 12."),
        ("1.5", "Enter a whole number, like 12."),
        ("1_000", "Enter a whole number, like 12."),
        ("١٢", "Enter a whole number, like 12."),
        ("+-3", "Enter a whole number, like 12."),
        ("-1", "Must be at least 0."),
        (str(10**20), "Must be at most 1,000,000,000."),
    ],
)
def test_bad_stock_quantities_get_a_message_for_the_field(typed: str, message: str) -> None:
    with pytest.raises(FieldError) as refused:
        parse_int(typed, minimum=0, maximum=MAX_STOCK)
    assert refused.value.message == message


@given(st.text(max_size=30))
def test_any_typed_quantity_is_an_int_in_range_or_a_field_error(typed: str) -> None:
    try:
        value = parse_int(typed, minimum=-MAX_STOCK, maximum=MAX_STOCK)
    except FieldError:
        return
    assert -MAX_STOCK <= value <= MAX_STOCK


def test_cents_are_formatted_with_two_decimals_and_thousands() -> None:
    assert [format_cents(c) for c in (0, 5, 1002, 123456789)] == ["0.00", "0.05", "10.02", "1,234,567.89"]
