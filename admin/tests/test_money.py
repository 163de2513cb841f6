"""What an admin types into the price and stock fields: exact cents or a message, never an exception."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from admin.money import (
    MAX_NAME_LENGTH,
    MAX_REASON_LENGTH,
    FieldError,
    format_cents,
    parse_int,
    parse_name,
    parse_price,
    parse_reason,
    parse_refund_amount,
)
from servicekit.rules import MAX_PRICE_CENTS, MAX_STOCK

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
        ("12.", 1200),
        (".5", 50),
        ("+12", 1200),  # signed as parse_int allows
        ("0.10", 10),
        ("1,234,567.89", 123456789),
        ("100,000,000.00", MAX_PRICE_CENTS),  # the limit itself is a price
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
        ("100000000.01", "The price can be at most 100,000,000.00."),
        ("-0.01", "The price cannot be negative."),
        ("12.50 USD", "Enter a price like 12.50."),
        ("$12.50", "Enter a price like 12.50."),
        ("1.2.3", "Enter a price like 12.50."),
        ("0x10", "Enter a price like 12.50."),
        ("sNaN", "Enter a price like 12.50."),
        ("-Infinity", "Enter a price like 12.50."),
        ("9" * 100, "Enter a price like 12.50."),
        # Decimal takes each of these; a price field does not: "1e3" is a typo more often than 1,000.00.
        ("1e20", "Enter a price like 12.50."),
        ("1e3", "Enter a price like 12.50."),
        ("1e999999", "Enter a price like 12.50."),
        ("9E+999999999", "Enter a price like 12.50."),
        ("1e-999999999", "Enter a price like 12.50."),
        ("-1e999999", "Enter a price like 12.50."),
        ("1_000", "Enter a price like 12.50."),
        ("١٢", "Enter a price like 12.50."),
        ("12.5.", "Enter a price like 12.50."),
        ("-", "Enter a price like 12.50."),
        (".", "Enter a price like 12.50."),
        ("1.000000001", "Enter a price like 12.50."),
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


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "Enter an amount."),
        ("ten", "Enter an amount like 12.50."),
        ("0", "Refund at least 0.01."),
        ("0.00", "Refund at least 0.01."),
        ("-5", "The amount cannot be negative."),
        ("25.01", "The amount can be at most 25.00."),
        ("0.005", "Use at most two decimal places."),
    ],
)
def test_a_refund_is_at_least_a_cent_and_at_most_what_is_refundable(typed: str, message: str) -> None:
    with pytest.raises(FieldError) as refused:
        parse_refund_amount(typed, refundable_cents=2500)
    assert refused.value.message == message


def test_an_order_with_nothing_left_to_refund_takes_no_amount() -> None:
    for typed in ("0.01", "0", "1"):
        with pytest.raises(FieldError) as refused:
            parse_refund_amount(typed, refundable_cents=0)
        assert refused.value.message == "Nothing is left to refund on this order."


def test_a_refund_of_anything_from_a_cent_to_all_that_is_left_is_exact_cents() -> None:
    assert parse_refund_amount("0.01", refundable_cents=2500) == 1
    assert parse_refund_amount("7.5", refundable_cents=2500) == 750
    assert parse_refund_amount("25.00", refundable_cents=2500) == 2500


@pytest.mark.parametrize(
    ("typed", "minimum", "maximum", "value"),
    [(" 7 ", 0, 10, 7), ("1,000", 0, 10_000, 1000), ("+5", 0, 10, 5), ("0", 0, 0, 0), ("-3", -3, 3, -3)],
)
def test_whole_numbers_within_their_bounds_are_read_exactly(
    typed: str, minimum: int, maximum: int, value: int
) -> None:
    assert parse_int(typed, minimum=minimum, maximum=maximum) == value


def test_a_whole_number_names_itself_in_its_messages() -> None:
    with pytest.raises(FieldError) as refused:
        parse_int("", minimum=0, maximum=10, what="a threshold")
    assert refused.value.message == "Enter a threshold."
    with pytest.raises(FieldError) as refused:
        parse_int("lots", minimum=0, maximum=10, what="a threshold")
    assert refused.value.message == "Enter a threshold, like 12."


def test_names_are_trimmed_and_limited() -> None:
    assert parse_name("  Blue mug ") == "Blue mug"
    assert parse_name("x" * MAX_NAME_LENGTH) == "x" * MAX_NAME_LENGTH
    for typed, message in [
        ("", "Enter a name."),
        ("   \t", "Enter a name."),
        ("x" * (MAX_NAME_LENGTH + 1), f"Use at most {MAX_NAME_LENGTH} characters."),
    ]:
        with pytest.raises(FieldError) as refused:
            parse_name(typed)
        assert refused.value.message == message


def test_a_refund_reason_is_one_line_of_words_and_limited() -> None:
    assert parse_reason("  dented\n\n lid\t ") == "dented lid"
    # The limit is on what is kept: runs of whitespace count as one space.
    assert parse_reason("a" + " " * 1000 + "b") == "a b"
    assert parse_reason("y" * MAX_REASON_LENGTH) == "y" * MAX_REASON_LENGTH
    for typed, message in [
        ("", "Say why (the customer may ask)."),
        (" \n ", "Say why (the customer may ask)."),
        ("y" * (MAX_REASON_LENGTH + 1), f"Use at most {MAX_REASON_LENGTH} characters."),
    ]:
        with pytest.raises(FieldError) as refused:
            parse_reason(typed)
        assert refused.value.message == message
