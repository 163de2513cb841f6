from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, TypeAdapter

from gateway.clients.base import UpstreamClient, UpstreamError

OrderStatusName = Literal[
    "PENDING", "PAYMENT_FAILED", "AUTHORIZED", "PAID", "REFUNDED", "CANCELLED", "EXPIRED"
]


class OrderItemRecord(BaseModel):
    product_id: int
    qty: int
    price_cents: int


class AddressRecord(BaseModel):
    line1: str
    line2: str | None = None
    city: str
    postal_code: str
    country: str


class CustomerRecord(BaseModel):
    email: str
    name: str | None = None
    address: AddressRecord | None = None


class RefundRecord(BaseModel):
    id: int
    amount_cents: int
    reason: str | None = None
    created_at: datetime


class OrderRecord(BaseModel):
    id: int
    status: OrderStatusName
    total_cents: int
    items: list[OrderItemRecord]
    expires_at: datetime | None = None
    authorized_cents: int = 0
    captured_cents: int = 0
    refunded_cents: int = 0
    card_last4: str | None = None
    payment_id: int | None = None
    payment_failure_code: str | None = None
    payment_attempts: int = 0
    customer: CustomerRecord | None = None
    refunds: list[RefundRecord] = []
    created_at: datetime
    updated_at: datetime


class OrderPlaced(BaseModel):
    orderId: int  # noqa: N815 - orders' contract spelling
    status: OrderStatusName
    total_cents: int
    expires_at: datetime | None = None


_orders = TypeAdapter(list[OrderRecord])


class OrdersClient(UpstreamClient):
    service = "orders"

    async def place_order(
        self,
        lines: list[tuple[int, int]],
        *,
        idempotency_key: str | None,
        customer: dict[str, Any] | None = None,
    ) -> OrderPlaced:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key is not None else {}
        body: dict[str, Any] = {"items": [{"productId": product_id, "qty": qty} for product_id, qty in lines]}
        if customer is not None:
            body["customer"] = customer
        response = await self.request("POST", "/orders", json=body, headers=headers)
        return OrderPlaced.model_validate_json(response.content)

    async def get_order(self, order_id: int) -> OrderRecord | None:
        try:
            response = await self.request("GET", f"/orders/{order_id}")
        except UpstreamError as exc:
            if exc.status == 404:
                return None
            raise
        return OrderRecord.model_validate_json(response.content)

    async def list_orders(self, *, status: str | None, limit: int, after: int | None) -> list[OrderRecord]:
        params = {"limit": str(limit)}
        if status is not None:
            params["status"] = status
        if after is not None:
            params["after"] = str(after)
        response = await self.request("GET", "/orders", params=params)
        return _orders.validate_json(response.content)

    async def authorize(self, order_id: int, card_number: str) -> OrderRecord:
        """Orders decides the amount (the order's total) and asks payments; the number is never kept here."""
        response = await self.request(
            "POST", f"/orders/{order_id}/authorize", json={"card_number": card_number}
        )
        return OrderRecord.model_validate_json(response.content)

    async def capture(self, order_id: int) -> OrderRecord:
        response = await self.request("POST", f"/orders/{order_id}/capture")
        return OrderRecord.model_validate_json(response.content)

    async def cancel(self, order_id: int) -> OrderRecord:
        response = await self.request("POST", f"/orders/{order_id}/cancel")
        return OrderRecord.model_validate_json(response.content)

    async def refund(
        self, order_id: int, *, amount_cents: int, reason: str | None, idempotency_key: str
    ) -> OrderRecord:
        body: dict[str, Any] = {"amount_cents": amount_cents}
        if reason is not None:
            body["reason"] = reason
        response = await self.request(
            "POST",
            f"/orders/{order_id}/refunds",
            json=body,
            headers={"Idempotency-Key": idempotency_key},
        )
        return OrderRecord.model_validate_json(response.content)
