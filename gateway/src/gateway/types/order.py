from datetime import datetime
from enum import Enum

import strawberry

from gateway.clients.orders import OrderItemRecord, OrderRecord
from gateway.errors import UserError
from gateway.types.page import PageInfo
from gateway.types.product import Product
from gateway.types.scalars import Cents


@strawberry.enum
class OrderStatus(Enum):
    PENDING = "PENDING"
    PAID = "PAID"
    PAYMENT_FAILED = "PAYMENT_FAILED"
    CANCELLED = "CANCELLED"


@strawberry.type
class OrderItem:
    qty: int
    price_cents: Cents
    product_id: strawberry.Private[int]

    @strawberry.field
    async def product(self, info: strawberry.Info) -> Product:
        # Batched per request: every line of every order in the response shares one GET /products?ids=…
        record = await info.context.loaders.product.load(self.product_id)
        if record is None:
            raise LookupError(f"order line names product {self.product_id}, which inventory does not know")
        return Product.from_record(record)

    @classmethod
    def from_record(cls, record: OrderItemRecord) -> "OrderItem":
        return cls(qty=record.qty, price_cents=Cents(record.price_cents), product_id=record.product_id)


@strawberry.type
class Order:
    id: strawberry.ID
    status: OrderStatus
    total_cents: Cents
    items: list[OrderItem]
    charge_id: strawberry.ID | None
    payment_failure_code: str | None
    payment_attempts: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_record(cls, record: OrderRecord) -> "Order":
        return cls(
            id=strawberry.ID(str(record.id)),
            status=OrderStatus(record.status),
            total_cents=Cents(record.total_cents),
            items=[OrderItem.from_record(item) for item in record.items],
            charge_id=strawberry.ID(str(record.charge_id)) if record.charge_id is not None else None,
            payment_failure_code=record.payment_failure_code,
            payment_attempts=record.payment_attempts,
            created_at=record.created_at,
            updated_at=record.updated_at,
        )


@strawberry.type
class OrderConnection:
    nodes: list[Order]
    page_info: PageInfo


@strawberry.type
class OrderPayload:
    order: Order | None = None
    errors: list[UserError]


@strawberry.type
class PlaceOrderPayload:
    order: Order | None = None
    errors: list[UserError]


@strawberry.input
class OrderLineInput:
    product_id: strawberry.ID
    qty: int


@strawberry.input
class PlaceOrderInput:
    items: list[OrderLineInput]
    idempotency_key: str | None = strawberry.UNSET
