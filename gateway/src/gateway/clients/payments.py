from datetime import datetime

from pydantic import BaseModel, TypeAdapter

from gateway.clients.base import UpstreamClient


class PaymentRefundRecord(BaseModel):
    refund_id: int
    amount_cents: int
    created_at: datetime


class PaymentRecord(BaseModel):
    payment_id: int
    order_id: int
    amount_cents: int
    captured_cents: int
    refunded_cents: int
    status: str
    failure_code: str | None = None
    card_brand: str | None = None
    card_last4: str | None = None
    authorization_expires_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
    refunds: list[PaymentRefundRecord] = []


_payments = TypeAdapter(list[PaymentRecord])


class PaymentsClient(UpstreamClient):
    """Read-only from here: money moves only through orders (authorize, capture, cancel, refund), which owns
    the amounts and the keys. The gateway reads an order's payments for the admin's timeline."""

    service = "payments"

    async def list_for_order(self, order_id: int) -> list[PaymentRecord]:
        """The order's payments, oldest first (payments caps the list at 100)."""
        response = await self.request("GET", "/payments", params={"order_id": str(order_id), "limit": "100"})
        return _payments.validate_json(response.content)
