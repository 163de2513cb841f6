from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from servicekit.validation import MAX_ID

MAX_QTY_PER_LINE = 1_000
MAX_LINES = 100

OrderStatus = Literal["PENDING", "PAID", "PAYMENT_FAILED", "CANCELLED"]


class OrderLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: Annotated[StrictInt, Field(alias="productId", ge=1, le=MAX_ID)]
    qty: Annotated[StrictInt, Field(ge=1, le=MAX_QTY_PER_LINE)]


class OrderCreate(BaseModel):
    """Field names as the contract locked them: ``{items: [{productId, qty}]}``."""

    model_config = ConfigDict(extra="forbid")

    items: Annotated[list[OrderLineIn], Field(min_length=1, max_length=MAX_LINES)]


class OrderPlaced(BaseModel):
    orderId: int  # noqa: N815 - the contract's spelling
    status: OrderStatus
    total_cents: int


class OrderItemRead(BaseModel):
    product_id: int
    qty: int
    price_cents: int


class OrderRead(BaseModel):
    id: int
    status: OrderStatus
    total_cents: int
    items: list[OrderItemRead]
    payment_attempts: int
    charge_id: int | None
    payment_failure_code: str | None
    created_at: datetime
    updated_at: datetime
