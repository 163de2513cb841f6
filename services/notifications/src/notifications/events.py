"""The event catalogue as the worker reads it (version 1 of each type; docs/events.md is the producers' copy).

Producers do not import this module: they insert rows into ``outbox.events`` from their own SQL. The worker
validates what it reads against these models and fails (never retries) an event that does not fit.
"""

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class _Data(BaseModel):
    # Producers may add fields within a version; consumers read only what they know.
    model_config = ConfigDict(extra="ignore")


class Item(_Data):
    product_id: int
    qty: int = Field(ge=1)
    price_cents: int = Field(ge=0)
    name: str | None = None


class Address(_Data):
    line1: str
    line2: str | None = None
    city: str
    postal_code: str
    country: str


class Customer(_Data):
    email: str
    name: str | None = None
    address: Address | None = None


class OrderData(_Data):
    order_id: int
    total_cents: int = Field(ge=0)
    items: list[Item] = Field(default_factory=list)
    customer: Customer | None = None


class OrderPlaced(OrderData):
    expires_at: datetime | None = None


class OrderAuthorized(OrderData):
    authorized_cents: int = Field(ge=0)
    payment_id: int | None = None


class OrderPaid(OrderData):
    captured_cents: int = Field(ge=0)
    payment_id: int | None = None


class OrderCancelled(OrderData):
    previous_status: str
    # Captured money this cancellation gives back (0 unless the order was PAID).
    refund_cents: int = Field(default=0, ge=0)


class OrderExpired(OrderData):
    pass


class OrderRefunded(OrderData):
    refund_id: int
    amount_cents: int = Field(ge=1)
    refunded_cents: int = Field(ge=0, description="All refunds of the order so far, this one included")
    reason: str | None = None
    status: str


class PaymentDeclined(_Data):
    order_id: int
    payment_id: int | None = None
    failure_code: str
    attempt: int = Field(ge=1)


class StockLevel(_Data):
    product_id: int
    name: str
    stock_qty: int
    # The product's low-stock threshold (inventory owns it); null: no alerting for this product.
    threshold: int | None = None


class StockLow(StockLevel):
    """The product's stock went from above its threshold to at or below it (once per crossing)."""

    threshold: int


class StockRestored(StockLevel):
    """The product is no longer low: its stock went back above its threshold, or the threshold was lowered
    below the stock or removed (threshold null)."""


class ProductChanged(StockLevel):
    price_cents: int = Field(ge=0)


CATALOGUE: dict[str, type[_Data]] = {
    "order.placed": OrderPlaced,
    "order.authorized": OrderAuthorized,
    "order.paid": OrderPaid,
    "order.cancelled": OrderCancelled,
    "order.expired": OrderExpired,
    "order.refunded": OrderRefunded,
    "payment.declined": PaymentDeclined,
    "stock.low": StockLow,
    "stock.restored": StockRestored,
    "product.changed": ProductChanged,
}
EVENT_TYPES = tuple(CATALOGUE)
SUPPORTED_VERSION = 1


class Event(BaseModel):
    """A row of outbox.events as the worker reads it."""

    pk: int
    event_id: UUID
    type: str
    version: int
    aggregate: str
    aggregate_id: int
    occurred_at: datetime
    data: dict[str, Any]


class InvalidEvent(Exception):
    """The event is of an unknown type or version, or its data does not fit the catalogue."""


def parse_data(event: Event) -> Any:
    model = CATALOGUE.get(event.type)
    if model is None:
        raise InvalidEvent(f"unknown event type {event.type!r}")
    if event.version != SUPPORTED_VERSION:
        raise InvalidEvent(f"{event.type} version {event.version} is not supported")
    try:
        return model.model_validate(event.data)
    except ValueError as exc:
        raise InvalidEvent(f"{event.type}: {exc}") from None
