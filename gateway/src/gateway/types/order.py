from collections.abc import Iterable
from datetime import datetime
from enum import Enum

import strawberry
from strawberry.types.nodes import SelectedField, Selection

from gateway.clients.orders import OrderItemRecord, OrderPlaced, OrderRecord, RefundRecord
from gateway.errors import UserError
from gateway.scopes import Scope
from gateway.types.customer import Customer, CustomerInput
from gateway.types.page import PageInfo
from gateway.types.payment import Payment
from gateway.types.product import Product
from gateway.types.scalars import Cents
from servicekit.rules import ORDER_STATUSES


@strawberry.enum(description="See docs/adr/0004-order-and-payment-lifecycle.md for the transitions.")
class OrderStatus(Enum):
    PENDING = "PENDING"
    PAYMENT_FAILED = "PAYMENT_FAILED"
    AUTHORIZED = "AUTHORIZED"
    PAID = "PAID"
    REFUNDED = "REFUNDED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"


# GraphQL needs an Enum class; the statuses themselves are the rule orders owns (servicekit.rules).
if tuple(status.value for status in OrderStatus) != ORDER_STATUSES:
    raise RuntimeError("OrderStatus differs from servicekit.rules.ORDER_STATUSES")


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
class Refund:
    id: strawberry.ID
    amount_cents: Cents
    reason: str | None
    created_at: datetime

    @classmethod
    def from_record(cls, record: RefundRecord) -> "Refund":
        return cls(
            id=strawberry.ID(str(record.id)),
            amount_cents=Cents(record.amount_cents),
            reason=record.reason,
            created_at=record.created_at,
        )


@strawberry.type
class Order:
    id: strawberry.ID
    status: OrderStatus
    total_cents: Cents
    items: list[OrderItem]
    expires_at: datetime | None = strawberry.field(
        description="When the reservation lapses (PENDING and PAYMENT_FAILED only; null otherwise)"
    )
    authorized_cents: Cents
    captured_cents: Cents
    refunded_cents: Cents
    card_last4: str | None
    payment_failure_code: str | None = strawberry.field(
        description="Why the last card was declined: card_declined or insufficient_funds"
    )
    payment_attempts: int
    customer: Customer | None
    refunds: list[Refund]
    created_at: datetime
    updated_at: datetime
    order_id: strawberry.Private[int]

    @strawberry.field(  # type: ignore[untyped-decorator]
        description="Admin only: the order's payments, oldest first; [] for anyone else."
    )
    async def payments(self, info: strawberry.Info) -> list[Payment]:
        if not info.context.allows(Scope.ORDERS_READ):
            return []
        records = await info.context.loaders.payments.load(self.order_id)
        return [Payment.from_record(record) for record in records]

    # The fields orders' answer to POST /orders carries (payments needs only the id).
    PLACED_FIELDS = frozenset({"id", "status", "totalCents", "expiresAt", "payments", "__typename"})

    @classmethod
    def answered_by_placing(cls, selected: Iterable[Selection]) -> bool:
        """Whether every field asked of the payload's ``order`` (fragments included) is one POST /orders
        answers, so placeOrder needs no read-back. ``selected``: ``info.selected_fields`` of placeOrder."""

        def fields(selections: Iterable[Selection]) -> Iterable[SelectedField]:
            for selection in selections:
                if isinstance(selection, SelectedField):
                    yield selection
                else:  # a fragment spread or an inline fragment
                    yield from fields(selection.selections)

        return all(
            field.name in cls.PLACED_FIELDS
            for root in fields(selected)
            for payload_field in fields(root.selections)
            if payload_field.name == "order"
            for field in fields(payload_field.selections)
        )

    @classmethod
    def from_placed(cls, placed: OrderPlaced) -> "Order":
        """The order as placing it answered. Only PLACED_FIELDS are known: the rest hold a new order's values
        and are never served (placeOrder reads the order back when the client asks for any of them)."""
        return cls(
            id=strawberry.ID(str(placed.orderId)),
            order_id=placed.orderId,
            status=OrderStatus(placed.status),
            total_cents=Cents(placed.total_cents),
            items=[],
            expires_at=placed.expires_at,
            authorized_cents=Cents(0),
            captured_cents=Cents(0),
            refunded_cents=Cents(0),
            card_last4=None,
            payment_failure_code=None,
            payment_attempts=0,
            customer=None,
            refunds=[],
            created_at=datetime.min,
            updated_at=datetime.min,
        )

    @classmethod
    def from_record(cls, record: OrderRecord) -> "Order":
        return cls(
            id=strawberry.ID(str(record.id)),
            order_id=record.id,
            status=OrderStatus(record.status),
            total_cents=Cents(record.total_cents),
            items=[OrderItem.from_record(item) for item in record.items],
            expires_at=record.expires_at,
            authorized_cents=Cents(record.authorized_cents),
            captured_cents=Cents(record.captured_cents),
            refunded_cents=Cents(record.refunded_cents),
            card_last4=record.card_last4,
            payment_failure_code=record.payment_failure_code,
            payment_attempts=record.payment_attempts,
            customer=Customer.from_record(record.customer) if record.customer else None,
            refunds=[Refund.from_record(refund) for refund in record.refunds],
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
    access_token: str | None = strawberry.field(
        default=None,
        description="The order's own key: authorizePayment and order(id, accessToken) need it. "
        "The same for every replay of the same idempotencyKey.",
    )
    errors: list[UserError]


@strawberry.input
class OrderLineInput:
    product_id: strawberry.ID
    qty: int


@strawberry.input
class PlaceOrderInput:
    items: list[OrderLineInput]
    idempotency_key: str | None = strawberry.UNSET
    customer: CustomerInput | None = strawberry.UNSET


@strawberry.input
class AuthorizePaymentInput:
    order_id: strawberry.ID
    access_token: str
    card_number: str = strawberry.field(
        description="Digits, spaces or dashes. Test cards: 4242 4242 4242 4242 authorizes, "
        "4000 0000 0000 0002 is declined, 4000 0000 0000 9995 has insufficient funds."
    )


@strawberry.input
class RefundPaymentInput:
    order_id: strawberry.ID
    amount_cents: Cents
    reason: str | None = strawberry.UNSET
    idempotency_key: str
