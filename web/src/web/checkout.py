"""The checkout form's rules: who the order is for, where it goes and the card it is paid with.

Everything is checked here first so each message shows next to its field and nothing is ordered from a
form that cannot succeed; the gateway checks again, and its field errors land on the same fields
(``form_field``). The card number is read, checked and passed on; it is never stored, logged or echoed back
into a page.
"""

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from email_validator import EmailNotValidError, validate_email

from servicekit.rules import MAX_EMAIL, MAX_TEXT
from web.cart import FormInputError

# The orders service's limits (orders.schemas), checked here so the message shows next to the field.
MAX_EMAIL_LENGTH = MAX_EMAIL
MAX_TEXT_LENGTH = MAX_TEXT
CARD_DIGITS = range(12, 20)

# The simulated processor's test cards (payments decides by card, like a processor's test mode).
TEST_CARDS = (
    ("4242 4242 4242 4242", "authorized"),
    ("4000 0000 0000 0002", "declined: card declined"),
    ("4000 0000 0000 9995", "declined: insufficient funds"),
)

# What the shopper is told when the processor declines (the order's payment_failure_code).
DECLINE_MESSAGES = {
    "card_declined": "The card's bank declined the payment. Please try another card.",
    "insufficient_funds": (
        "The card's bank declined the payment for insufficient funds. Please try another card."
    ),
}

# Each order status as the shopper reads it.
STATUS_LABELS = {
    "PENDING": "waiting for a card",
    "PAYMENT_FAILED": "card declined",
    "AUTHORIZED": "card authorized, to be charged when it ships",
    "PAID": "paid",
    "REFUNDED": "refunded",
    "CANCELLED": "cancelled",
    "EXPIRED": "reservation expired",
}


def status_label(status: str) -> str:
    return STATUS_LABELS.get(status, status.lower().replace("_", " "))


# Form fields in page order, with the label each message refers to.
CUSTOMER_FIELDS = ("email", "name", "line1", "line2", "city", "postal_code", "country")
CARD_FIELD = "card_number"
_OPTIONAL = frozenset({"line2"})
_REQUIRED_MESSAGES = {
    "email": "Enter your email address, so we can tell you about your order.",
    "name": "Enter the name the parcel should be addressed to.",
    "line1": "Enter the first line of the address.",
    "city": "Enter the town or city.",
    "postal_code": "Enter the postal code.",
    "country": "Enter the country as a two-letter code, like GB or US.",
}
_COUNTRY = re.compile(r"[A-Z]{2}")
_CARD_SEPARATORS = re.compile(r"[ \-]")
# The gateway's `field` names (last path segment, lower case) mapped onto this form's fields.
_GATEWAY_FIELDS = {
    "email": "email",
    "name": "name",
    "line1": "line1",
    "line2": "line2",
    "city": "city",
    "postalcode": "postal_code",
    "postal_code": "postal_code",
    "country": "country",
    "cardnumber": CARD_FIELD,
    "card_number": CARD_FIELD,
}


@dataclass(frozen=True)
class CheckoutCustomer:
    email: str
    name: str
    line1: str
    line2: str | None
    city: str
    postal_code: str
    country: str

    def to_input(self) -> dict[str, Any]:
        """The gateway's CustomerInput."""
        return {
            "email": self.email,
            "name": self.name,
            "address": {
                "line1": self.line1,
                "line2": self.line2,
                "city": self.city,
                "postalCode": self.postal_code,
                "country": self.country,
            },
        }


def _clean_text(raw: str, *, limit: int) -> str:
    text = " ".join(raw.split())  # no leading, trailing or doubled whitespace, no newlines
    if len(text) > limit:
        raise FormInputError(f"Use at most {limit} characters.")
    if any(unicodedata.category(char).startswith("C") for char in text):
        raise FormInputError("This contains characters we cannot accept.")
    return text


def _parse_email(text: str) -> str:
    if len(text) > MAX_EMAIL_LENGTH:
        raise FormInputError(f"Use at most {MAX_EMAIL_LENGTH} characters.")
    try:
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError:
        raise FormInputError("Enter an email address like name@example.com.") from None


def parse_customer(values: dict[str, str]) -> tuple[CheckoutCustomer | None, dict[str, str]]:
    """The customer from the form's raw ``values``, or None and a message per field that is wrong."""
    cleaned: dict[str, str] = {}
    errors: dict[str, str] = {}
    for name in CUSTOMER_FIELDS:
        try:
            text = _clean_text(
                values.get(name, ""), limit=MAX_EMAIL_LENGTH if name == "email" else MAX_TEXT_LENGTH
            )
            if not text:
                if name not in _OPTIONAL:
                    errors[name] = _REQUIRED_MESSAGES[name]
                cleaned[name] = ""
                continue
            if name == "email":
                text = _parse_email(text)
            elif name == "country":
                text = text.upper()
                if not _COUNTRY.fullmatch(text):
                    raise FormInputError(_REQUIRED_MESSAGES["country"])
            cleaned[name] = text
        except FormInputError as exc:
            errors[name] = str(exc)
    if errors:
        return None, errors
    return (
        CheckoutCustomer(
            email=cleaned["email"],
            name=cleaned["name"],
            line1=cleaned["line1"],
            line2=cleaned["line2"] or None,
            city=cleaned["city"],
            postal_code=cleaned["postal_code"],
            country=cleaned["country"],
        ),
        {},
    )


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def parse_card_number(raw: str | None) -> str:
    """A card number as typed (spaces and dashes allowed) → its digits; FormInputError says what is wrong."""
    text = _CARD_SEPARATORS.sub("", raw or "")
    if not text:
        raise FormInputError("Enter your card number.")
    if len(text) > 40 or not (text.isascii() and text.isdecimal()):
        raise FormInputError("A card number is made of digits (spaces are fine).")
    if len(text) not in CARD_DIGITS:
        raise FormInputError("A card number has 12 to 19 digits.")
    if not luhn_valid(text):
        raise FormInputError("That card number is not valid. Please check it.")
    return text


def form_field(gateway_field: str | None) -> str | None:
    """The form field a gateway UserError.field ("input.customer.address.postalCode") belongs to, if any."""
    key = (gateway_field or "").rsplit(".", 1)[-1].lower()
    return _GATEWAY_FIELDS.get(key)


def time_left(expires_at: datetime, now: datetime) -> str:
    """ "14 minutes 5 seconds"; "less than a second" once it has (nearly) passed."""
    seconds = int((expires_at - now).total_seconds())
    if seconds < 1:
        return "less than a second"
    minutes, seconds = divmod(seconds, 60)
    parts = []
    if minutes:
        parts.append(f"{minutes} minute{'s' if minutes != 1 else ''}")
    if seconds:
        parts.append(f"{seconds} second{'s' if seconds != 1 else ''}")
    return " ".join(parts)
