from datetime import datetime
from typing import Literal

from pydantic import BaseModel, TypeAdapter

from gateway.clients.base import UpstreamClient, UpstreamError

OrderStatusName = Literal["PENDING", "PAID", "PAYMENT_FAILED", "CANCELLED"]


class OrderItemRecord(BaseModel):
    product_id: int
    qty: int
    price_cents: int


class OrderRecord(BaseModel):
    id: int
    status: OrderStatusName
    total_cents: int
    items: list[OrderItemRecord]
    payment_attempts: int = 0
    charge_id: int | None = None
    payment_failure_code: str | None = None
    created_at: datetime
    updated_at: datetime


class OrderPlaced(BaseModel):
    orderId: int  # noqa: N815 - orders' contract spelling
    status: OrderStatusName
    total_cents: int


_orders = TypeAdapter(list[OrderRecord])


class OrdersClient(UpstreamClient):
    service = "orders"

    async def place_order(self, lines: list[tuple[int, int]], *, idempotency_key: str | None) -> OrderPlaced:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key is not None else {}
        body = {"items": [{"productId": product_id, "qty": qty} for product_id, qty in lines]}
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

    async def capture(self, order_id: int) -> OrderRecord:
        response = await self.request("POST", f"/orders/{order_id}/capture")
        return OrderRecord.model_validate_json(response.content)

    async def cancel(self, order_id: int) -> OrderRecord:
        response = await self.request("POST", f"/orders/{order_id}/cancel")
        return OrderRecord.model_validate_json(response.content)
