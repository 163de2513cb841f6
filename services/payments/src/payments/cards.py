"""Card numbers: checked (12-19 digits, Luhn), reduced to what may be kept (brand and last four digits).

The full number lives only in a ``Card`` for as long as the processor is being asked. It is never stored,
logged, fingerprinted or put in an exception message, and ``Card`` keeps it out of its own repr.
"""

from dataclasses import dataclass, field

from payments.errors import InvalidCard


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a string of ASCII digits: every second digit from the right doubled."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def normalize_card_number(raw: str) -> str | None:
    """The digits of a card number written with optional spaces or dashes, or None when it is not one."""
    digits = raw.replace(" ", "").replace("-", "")
    if not (digits.isascii() and digits.isdigit() and 12 <= len(digits) <= 19):
        return None
    return digits if luhn_valid(digits) else None


def card_brand(digits: str) -> str:
    """The card network, from the leading digits (the issuer identification number ranges)."""
    if digits.startswith("4"):
        return "visa"
    if digits[:2] in {"34", "37"}:
        return "amex"
    if 51 <= int(digits[:2]) <= 55 or 2221 <= int(digits[:4]) <= 2720:
        return "mastercard"
    if digits.startswith(("6011", "65")) or 644 <= int(digits[:3]) <= 649:
        return "discover"
    return "unknown"


@dataclass(frozen=True)
class Card:
    number: str = field(repr=False)  # digits only; never stored, never logged
    brand: str
    last4: str


def parse_card(raw: str) -> Card:
    digits = normalize_card_number(raw)
    if digits is None:
        # The number is deliberately not echoed back: not in the message, not in the problem body.
        raise InvalidCard("The card number must be 12 to 19 digits (spaces or dashes allowed) and pass Luhn.")
    return Card(number=digits, brand=card_brand(digits), last4=digits[-4:])
