"""Money and form fields: what an admin types, turned into exact integers or a message for the field."""

import re
from dataclasses import dataclass
from decimal import Decimal

from servicekit.rules import MAX_PRICE_CENTS, MAX_PRODUCT_NAME, MAX_REFUND_REASON

# The shop's rules (servicekit.rules, enforced by inventory and orders); checked here so the message shows
# next to the field.
MAX_NAME_LENGTH = MAX_PRODUCT_NAME
MAX_REASON_LENGTH = MAX_REFUND_REASON
_CENT = Decimal("0.01")
# ASCII digits only (str.isdigit and int() also accept "¹", "١" and "1_000"); long enough for any limit here.
_INTEGER = re.compile(r"[+-]?[0-9]{1,24}")
# An amount as people write one: ASCII digits and one decimal point ("12", "12.5", ".5", "12."), signed as
# parse_int allows (a minus to be told it cannot be negative). Decimal alone would also take "1e3", "1_000"
# and "١٢".
_AMOUNT = re.compile(r"[+-]?(?:[0-9]{1,24}(?:\.[0-9]{0,8})?|\.[0-9]{1,8})")


@dataclass(frozen=True)
class FieldError(Exception):
    message: str


def format_cents(cents: int) -> str:
    """12345 -> "123.45"; 1234567 -> "12,345.67" (integer arithmetic, never floats)."""
    sign = "-" if cents < 0 else ""
    units, rest = divmod(abs(cents), 100)
    return f"{sign}{units:,}.{rest:02d}"


def parse_money(raw: str, *, noun: str = "price", maximum: int = MAX_PRICE_CENTS) -> int:
    """ "12.50" -> 1250 cents exactly (Decimal). Accepts "12", "12.5", "1,234.50"; refuses the rest
    (exponents, other scripts' digits), with a message that names the field (a price, an amount)."""
    article = "an" if noun[0] in "aeiou" else "a"
    text = raw.strip().replace(",", "")
    if not text:
        raise FieldError(f"Enter {article} {noun}.")
    if not _AMOUNT.fullmatch(text):
        raise FieldError(f"Enter {article} {noun} like 12.50.")
    amount = Decimal(text)
    if amount < 0:
        raise FieldError(f"The {noun} cannot be negative.")
    if amount > Decimal(maximum).scaleb(-2):
        raise FieldError(f"The {noun} can be at most {format_cents(maximum)}.")
    if amount != amount.quantize(_CENT):
        raise FieldError("Use at most two decimal places.")
    return int(amount.quantize(_CENT).scaleb(2))


def parse_price(raw: str) -> int:
    return parse_money(raw, noun="price")


def parse_refund_amount(raw: str, *, refundable_cents: int) -> int:
    """A refund's amount: at least a cent, at most what was captured and not yet refunded."""
    if refundable_cents < 1:
        raise FieldError("Nothing is left to refund on this order.")
    cents = parse_money(raw, noun="amount", maximum=refundable_cents)
    if cents < 1:
        raise FieldError("Refund at least 0.01.")
    return cents


def parse_int(raw: str, *, minimum: int, maximum: int, what: str = "a whole number") -> int:
    text = raw.strip().replace(",", "")
    if not text:
        raise FieldError(f"Enter {what}.")
    if not _INTEGER.fullmatch(text):
        raise FieldError(f"Enter {what}, like 12.")
    value = int(text)
    if value < minimum:
        raise FieldError(f"Must be at least {minimum:,}.")
    if value > maximum:
        raise FieldError(f"Must be at most {maximum:,}.")
    return value


def parse_name(raw: str) -> str:
    name = raw.strip()
    if not name:
        raise FieldError("Enter a name.")
    if len(name) > MAX_NAME_LENGTH:
        raise FieldError(f"Use at most {MAX_NAME_LENGTH} characters.")
    return name


def parse_reason(raw: str) -> str:
    reason = " ".join(raw.split())
    if not reason:
        raise FieldError("Say why (the customer may ask).")
    if len(reason) > MAX_REASON_LENGTH:
        raise FieldError(f"Use at most {MAX_REASON_LENGTH} characters.")
    return reason
