"""The shop's rules, declared once: every layer that checks one (a service's schema, the gateway's input
checks, a UI's form) imports it from here, so the copies cannot disagree. The service that owns a rule
enforces it for real; the others check it early to answer next to the field."""

from typing import Literal, get_args

# Catalogue (inventory).
MAX_PRICE_CENTS = 100_000_000_00  # a hundred million in the currency's unit
MAX_STOCK = 1_000_000_000
MAX_PRODUCT_NAME = 200

# Orders.
MAX_QTY_PER_LINE = 1_000
MAX_LINES = 100
MAX_TEXT = 200  # a customer's name and each address line
MAX_EMAIL = 254  # RFC 5321's path limit, less the angle brackets
MAX_REFUND_REASON = 500

OrderStatus = Literal["PENDING", "PAYMENT_FAILED", "AUTHORIZED", "PAID", "REFUNDED", "CANCELLED", "EXPIRED"]
# In lifecycle order (docs/adr/0004).
ORDER_STATUSES: tuple[OrderStatus, ...] = get_args(OrderStatus)

# Accounts and API keys (the gateway).
MIN_PASSWORD = 12
MAX_PASSWORD = 1_024  # argon2 would hash a megabyte, slowly: longer passwords are simply wrong
MAX_API_KEY_NAME = 100

# Idempotency keys travel as an HTTP header, which carries ASCII: printable ASCII, 1 to 255 characters.
MAX_IDEMPOTENCY_KEY = 255


def is_idempotency_key(key: str) -> bool:
    return 1 <= len(key) <= MAX_IDEMPOTENCY_KEY and key.isascii() and key.isprintable()
