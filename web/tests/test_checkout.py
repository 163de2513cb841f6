"""The checkout form's rules on their own: customer details, card numbers, gateway field names, time left."""

import unicodedata
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from web.cart import FormInputError
from web.checkout import (
    CARD_FIELD,
    CUSTOMER_FIELDS,
    STATUS_LABELS,
    TEST_CARDS,
    form_field,
    luhn_valid,
    parse_card_number,
    parse_customer,
    status_label,
    time_left,
)

pytestmark = pytest.mark.unit

GOOD = {
    "email": " Ada@Example.COM ",
    "name": "Ada  Lovelace",
    "line1": "12 St James's Square",
    "line2": "",
    "city": "London",
    "postal_code": "SW1Y 4JH",
    "country": "gb",
}


def test_good_details_are_cleaned_into_the_gateways_customer_input() -> None:
    customer, errors = parse_customer(GOOD)
    assert errors == {}
    assert customer is not None
    assert customer.to_input() == {
        "email": "Ada@example.com",
        "name": "Ada Lovelace",
        "address": {
            "line1": "12 St James's Square",
            "line2": None,
            "city": "London",
            "postalCode": "SW1Y 4JH",
            "country": "GB",
        },
    }


@pytest.mark.parametrize(
    ("field", "typed", "message"),
    [
        ("email", "", "Enter your email address"),
        ("email", "not-an-email", "like name@example.com"),
        ("email", "a@b", "like name@example.com"),
        ("email", "x" * 250 + "@example.com", "at most 254 characters"),
        ("name", "   ", "Enter the name"),
        ("name", "N" * 201, "at most 200 characters"),
        ("line1", "", "first line of the address"),
        ("line2", "L" * 201, "at most 200 characters"),
        ("city", "Lon\x00don", "characters we cannot accept"),
        ("postal_code", "", "Enter the postal code"),
        ("country", "GBR", "two-letter code"),
        ("country", "1X", "two-letter code"),
    ],
)
def test_each_bad_field_gets_its_own_message(field: str, typed: str, message: str) -> None:
    customer, errors = parse_customer({**GOOD, field: typed})
    assert customer is None
    assert list(errors) == [field]
    assert message in errors[field]


def test_an_empty_form_names_every_required_field() -> None:
    customer, errors = parse_customer({})
    assert customer is None
    assert set(errors) == set(CUSTOMER_FIELDS) - {"line2"}


@pytest.mark.parametrize(("number", "_outcome"), TEST_CARDS)
def test_the_test_cards_listed_on_the_page_are_valid_numbers(number: str, _outcome: str) -> None:
    assert parse_card_number(number) == number.replace(" ", "")


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "Enter your card number"),
        ("4242 4242 4242 4241", "not valid"),
        ("4242-4242-4242-424x", "made of digits"),
        ("４２４２４２４２４２４２４２４２", "made of digits"),  # full-width digits are not card digits
        ("42", "12 to 19 digits"),
        ("4" * 20, "12 to 19 digits"),
        ("9" * 5000, "made of digits"),
    ],
)
def test_bad_card_numbers_get_a_message(typed: str, message: str) -> None:
    with pytest.raises(FormInputError) as refused:
        parse_card_number(typed)
    assert message in str(refused.value)


@given(st.text(alphabet="0123456789", min_size=11, max_size=18))
def test_appending_the_luhn_check_digit_makes_any_number_valid(body: str) -> None:
    check = next(d for d in "0123456789" if luhn_valid(body + d))
    assert parse_card_number(body + check) == body + check
    wrong = str((int(check) + 1) % 10)
    assert not luhn_valid(body + wrong)


@given(st.text(max_size=60))
def test_any_typed_card_is_digits_or_a_message(typed: str) -> None:
    try:
        digits = parse_card_number(typed)
    except FormInputError:
        return
    assert digits.isascii()
    assert digits.isdecimal()
    assert 12 <= len(digits) <= 19


def test_gateway_field_paths_land_on_the_form_fields() -> None:
    assert form_field("input.customer.address.postalCode") == "postal_code"
    assert form_field("customer.email") == "email"
    assert form_field("cardNumber") == CARD_FIELD
    assert form_field("input.items") is None
    assert form_field(None) is None


def test_time_left_reads_as_minutes_and_seconds() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert time_left(now + timedelta(seconds=905), now) == "15 minutes 5 seconds"
    assert time_left(now + timedelta(seconds=60), now) == "1 minute"
    assert time_left(now + timedelta(seconds=1), now) == "1 second"
    assert time_left(now - timedelta(seconds=3), now) == "less than a second"


def test_every_order_status_reads_as_words_and_a_new_one_still_does() -> None:
    assert status_label("AUTHORIZED") == "card authorized, to be charged when it ships"
    assert status_label("PAYMENT_FAILED") == "card declined"
    assert all(label and label == label.strip() for label in map(status_label, STATUS_LABELS))
    assert status_label("PARTIALLY_SHIPPED") == "partially shipped"  # one the shop does not know yet


@given(st.dictionaries(st.sampled_from(CUSTOMER_FIELDS), st.text(max_size=20)))
def test_any_form_is_a_clean_customer_or_messages_for_its_fields(changed: dict[str, str]) -> None:
    customer, errors = parse_customer({**GOOD, **changed})  # a good form with any fields typed over
    assert set(errors) <= set(changed)
    assert (customer is None) == bool(errors)
    assert set(errors) <= set(CUSTOMER_FIELDS)
    if customer is None:
        return
    for text in (customer.name, customer.line1, customer.line2 or "x", customer.city, customer.postal_code):
        assert text == " ".join(text.split())  # no leading, trailing, doubled whitespace, no newlines
        assert not any(unicodedata.category(char).startswith("C") for char in text)
    assert len(customer.country) == 2
    assert customer.country.isascii()
    assert customer.country.isupper()
