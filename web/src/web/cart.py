"""The cart: client state in a signed cookie, and the small pure rules around it (quantities, prices).

The cookie holds only product ids and quantities. Names, prices and stock are always read fresh from the
gateway, so a tampered or stale cookie can never change what anything costs. A cookie that fails its
signature, or decodes to anything but a well-formed cart, is treated as an empty cart.
"""

from dataclasses import dataclass
from typing import Any

from itsdangerous import BadData, URLSafeSerializer

from servicekit.rules import MAX_QTY_PER_LINE

COOKIE_NAME = "cart"
# Per line, the orders service's own rule; lines per cart, the shop's choice (orders takes up to 100).
MAX_LINES = 25
_CART_SALT = "lockstock.web.cart"
_CHECKOUT_SALT = "lockstock.web.checkout"


class FormInputError(ValueError):
    """A quantity from a form that is not a whole number in range; the message is shown to the shopper."""


def parse_quantity(raw: str | None, *, allow_zero: bool = False) -> int:
    """A form's quantity field as an int in 1..MAX_QTY_PER_LINE (0 too when ``allow_zero``: it removes)."""
    lowest = 0 if allow_zero else 1
    text = (raw or "").strip()
    if not text:
        raise FormInputError("Please enter a quantity.")
    # isdecimal() before int(): no signs, spaces, underscores or 4,300-digit strings reach int().
    if not (text.isascii() and text.isdecimal()) or len(text) > 6:
        raise FormInputError(f"Quantity must be a whole number from {lowest} to {MAX_QTY_PER_LINE}.")
    qty = int(text)
    if not lowest <= qty <= MAX_QTY_PER_LINE:
        raise FormInputError(f"Quantity must be a whole number from {lowest} to {MAX_QTY_PER_LINE}.")
    return qty


def parse_product_id(raw: str | None) -> str:
    text = (raw or "").strip()
    if not (text.isascii() and text.isdecimal()) or len(text) > 18 or int(text) < 1:
        raise FormInputError("That product does not exist.")
    return str(int(text))


def format_price(cents: int) -> str:
    """Integer cents as a shop price: 123456 → "$1,234.56", -5 → "-$0.05"."""
    sign = "-" if cents < 0 else ""
    dollars, rest = divmod(abs(cents), 100)
    return f"{sign}${dollars:,}.{rest:02d}"


def stock_label(stock_qty: int, low_stock_at: int = 5) -> str:
    if stock_qty <= 0:
        return "Sold out"
    if stock_qty <= low_stock_at:
        return f"Only {stock_qty} left"
    return "In stock"


@dataclass(frozen=True)
class Cart:
    """Product id → quantity, in the order the shopper added them."""

    lines: tuple[tuple[str, int], ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.lines

    @property
    def item_count(self) -> int:
        return sum(qty for _, qty in self.lines)

    def quantity_of(self, product_id: str) -> int:
        return dict(self.lines).get(product_id, 0)

    def add(self, product_id: str, qty: int) -> "Cart":
        """Adds to an existing line (capped at MAX_QTY_PER_LINE); a new line past MAX_LINES is refused."""
        current = dict(self.lines)
        if product_id not in current and len(current) >= MAX_LINES:
            raise FormInputError(f"A cart holds at most {MAX_LINES} different products.")
        current[product_id] = min(current.get(product_id, 0) + qty, MAX_QTY_PER_LINE)
        return Cart(tuple(current.items()))

    def set_quantity(self, product_id: str, qty: int) -> "Cart":
        """Sets a line's quantity; 0 removes it. Products not in the cart are left out."""
        if qty <= 0:
            return self.remove(product_id)
        return Cart(tuple((pid, qty if pid == product_id else q) for pid, q in self.lines))

    def remove(self, product_id: str) -> "Cart":
        return Cart(tuple((pid, q) for pid, q in self.lines if pid != product_id))

    def to_data(self) -> list[list[Any]]:
        return [[pid, qty] for pid, qty in self.lines]

    @classmethod
    def from_data(cls, data: Any) -> "Cart":
        """The inverse of to_data; anything malformed (shape, types, ranges, duplicates) → empty cart."""
        if not isinstance(data, list) or len(data) > MAX_LINES:
            return cls()
        lines: dict[str, int] = {}
        for entry in data:
            if not (isinstance(entry, list) and len(entry) == 2):
                return cls()
            pid, qty = entry
            if not isinstance(pid, str) or type(qty) is not int or not 1 <= qty <= MAX_QTY_PER_LINE:
                return cls()
            try:
                pid = parse_product_id(pid)
            except FormInputError:
                return cls()
            if pid in lines:
                return cls()
            lines[pid] = qty
        return cls(tuple(lines.items()))


class Signer:
    """Signs and verifies what the shop hands to the browser: the cart cookie and checkout snapshots.
    (Order pages are opened by the gateway's order access token, not by anything signed here.)"""

    def __init__(self, secret_key: str) -> None:
        self._serializer = URLSafeSerializer(secret_key)

    def dump_cart(self, cart: Cart) -> str:
        return self._serializer.dumps(cart.to_data(), salt=_CART_SALT)

    def load_cart(self, cookie: str | None) -> Cart:
        if not cookie:
            return Cart()
        try:
            return Cart.from_data(self._serializer.loads(cookie, salt=_CART_SALT))
        except (BadData, ValueError, TypeError):
            return Cart()

    def dump_checkout(self, cart: Cart, idempotency_key: str) -> str:
        return self._serializer.dumps({"k": idempotency_key, "lines": cart.to_data()}, salt=_CHECKOUT_SALT)

    def load_checkout(self, token: str | None) -> tuple[str, Cart] | None:
        """The (idempotency key, cart) a checkout page was rendered with, or None if forged or malformed."""
        if not token:
            return None
        try:
            data = self._serializer.loads(token, salt=_CHECKOUT_SALT)
        except (BadData, ValueError, TypeError):
            return None
        if not isinstance(data, dict) or not isinstance(data.get("k"), str):
            return None
        cart = Cart.from_data(data.get("lines"))
        return (data["k"], cart) if not cart.is_empty else None
