"""Card number checks, as pure functions (no server, no database)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payments.cards import card_brand, luhn_valid, normalize_card_number, parse_card
from payments.errors import InvalidCard

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "number",
    [
        "4242424242424242",
        "4000000000000002",
        "4000000000009995",
        "5555555555554444",
        "378282246310005",
        "6011111111111117",
        "79927398713",  # the textbook example (11 digits: Luhn-valid, too short to be a card)
    ],
)
def test_known_good_numbers_pass_luhn(number):
    assert luhn_valid(number)


@pytest.mark.parametrize("number", ["4242424242424241", "4000000000000001", "79927398710", "1"])
def test_a_wrong_check_digit_fails_luhn(number):
    assert not luhn_valid(number)


@given(digits=st.text(alphabet="0123456789", min_size=11, max_size=18), position=st.integers(0, 17))
def test_changing_any_one_digit_of_a_valid_number_breaks_luhn(digits, position):
    valid = next(digits + check for check in "0123456789" if luhn_valid(digits + check))
    index = position % len(valid)
    changed = valid[:index] + str((int(valid[index]) + 1) % 10) + valid[index + 1 :]
    assert not luhn_valid(changed)


@pytest.mark.parametrize(
    ("raw", "digits"),
    [
        ("4242 4242 4242 4242", "4242424242424242"),
        ("4242-4242-4242-4242", "4242424242424242"),
        (" 4242424242424242 ", "4242424242424242"),
        ("4000 0000 0000 9995", "4000000000009995"),
        ("3782 822463 10005", "378282246310005"),
    ],
)
def test_spaces_and_dashes_are_allowed(raw, digits):
    assert normalize_card_number(raw) == digits


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "4242 4242 4242 4241",  # fails Luhn
        "42424242424",  # 11 digits
        "4242424242424242" + "0000",  # 20 digits
        "4242.4242.4242.4242",
        "4242_4242_4242_4242",
        "4242 4242 4242 424x",
        "٤٢٤٢٤٢٤٢٤٢٤٢٤٢٤٢",  # Arabic-Indic digits: str.isdigit() says yes, a card network says no
        "+4242424242424242",
    ],
)
def test_anything_else_is_not_a_card_number(raw):
    assert normalize_card_number(raw) is None
    with pytest.raises(InvalidCard) as refused:
        parse_card(raw)
    digits_in_message = "".join(c for c in refused.value.detail if c.isdigit())
    assert "4242" not in digits_in_message


def test_twelve_and_nineteen_digits_are_the_bounds():
    twelve = next(f"42424242424{c}" for c in "0123456789" if luhn_valid(f"42424242424{c}"))
    nineteen = next(f"424242424242424242{c}" for c in "0123456789" if luhn_valid(f"424242424242424242{c}"))
    assert normalize_card_number(twelve) == twelve
    assert normalize_card_number(nineteen) == nineteen


@pytest.mark.parametrize(
    ("number", "brand"),
    [
        ("4242424242424242", "visa"),
        ("5555555555554444", "mastercard"),
        ("2223003122003222", "mastercard"),
        ("378282246310005", "amex"),
        ("6011111111111117", "discover"),
        ("3056930009020004", "unknown"),
    ],
)
def test_the_brand_follows_the_leading_digits(number, brand):
    assert card_brand(number) == brand


def test_a_parsed_card_keeps_brand_and_last_four_and_hides_the_number_from_its_repr():
    card = parse_card("4242 4242 4242 4242")

    assert (card.brand, card.last4, card.number) == ("visa", "4242", "4242424242424242")
    assert "42424242" not in repr(card)
    assert "42424242" not in str(card)
