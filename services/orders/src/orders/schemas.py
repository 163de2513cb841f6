from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StrictInt, StringConstraints

from servicekit.rules import MAX_EMAIL, MAX_LINES, MAX_QTY_PER_LINE, MAX_REFUND_REASON, MAX_TEXT, OrderStatus
from servicekit.validation import MAX_ID

Text200 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TEXT)]


class OrderLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: Annotated[StrictInt, Field(alias="productId", ge=1, le=MAX_ID)]
    qty: Annotated[StrictInt, Field(ge=1, le=MAX_QTY_PER_LINE)]


class Address(BaseModel):
    model_config = ConfigDict(extra="forbid")

    line1: Text200
    line2: Text200 | None = None
    city: Text200
    postal_code: Text200
    country: Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}$", to_upper=True)]


class Customer(BaseModel):
    """Who to ship to and tell: a snapshot of what the shopper typed, stored with the order as it is."""

    model_config = ConfigDict(extra="forbid")

    email: Annotated[EmailStr, Field(max_length=MAX_EMAIL)]
    name: Text200 | None = None
    address: Address | None = None


class OrderCreate(BaseModel):
    """Field names as the contract locked them: ``{items: [{productId, qty}], customer?}``."""

    model_config = ConfigDict(extra="forbid")

    items: Annotated[list[OrderLineIn], Field(min_length=1, max_length=MAX_LINES)]
    customer: Customer | None = None


class OrderPlaced(BaseModel):
    orderId: int  # noqa: N815 - the contract's spelling
    status: OrderStatus
    total_cents: int
    expires_at: datetime | None


class AuthorizeIn(BaseModel):
    """The card number is passed through to payments once and never stored, logged or fingerprinted."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    card_number: Annotated[str, Field(min_length=1, max_length=40, repr=False)]


class RefundIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount_cents: Annotated[StrictInt, Field(ge=1, le=2**62)]
    reason: Annotated[str, Field(max_length=MAX_REFUND_REASON)] | None = None


class OrderItemRead(BaseModel):
    product_id: int
    qty: int
    price_cents: int


class RefundRead(BaseModel):
    id: int
    amount_cents: int
    reason: str | None
    created_at: datetime


class OrderRead(BaseModel):
    id: int
    status: OrderStatus
    total_cents: int
    items: list[OrderItemRead]
    expires_at: datetime | None
    authorized_cents: int
    captured_cents: int
    refunded_cents: int
    card_last4: str | None
    payment_id: int | None
    payment_failure_code: str | None
    payment_attempts: int
    customer: Customer | None
    refunds: list[RefundRead]
    created_at: datetime
    updated_at: datetime
