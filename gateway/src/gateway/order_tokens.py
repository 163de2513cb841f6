"""Order access tokens: what lets a shopper, who has no account, pay for and read back their own order.

``base64url(HMAC-SHA256(secret, "order:{id}"))`` without padding: 256 bits, stored nowhere (a stored hash
would add nothing the HMAC does not already give), the same for every idempotent replay of ``placeOrder``,
verified in constant time. See docs/adr/0004-order-and-payment-lifecycle.md.
"""

import base64
import hashlib
import hmac


def derived_secret(jwt_secret: str) -> bytes:
    """The default secret, derived from the JWT secret (``GATEWAY_ORDER_TOKEN_SECRET`` overrides it)."""
    return hmac.new(jwt_secret.encode(), b"order-token", hashlib.sha256).digest()


class OrderTokens:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def issue(self, order_id: int) -> str:
        digest = hmac.new(self._secret, f"order:{order_id}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def verify(self, order_id: int, token: str | None) -> bool:
        if not token:
            return False
        return hmac.compare_digest(self.issue(order_id).encode(), token.encode("utf-8", "replace"))
