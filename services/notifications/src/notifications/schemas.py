from datetime import date, datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator

from notifications.events import EVENT_TYPES

DeliveryStatus = Literal["pending", "succeeded", "failed"]
AttemptOutcome = Literal["succeeded", "retrying", "failed"]


class EmailRead(BaseModel):
    id: int
    event_id: UUID
    message_id: str
    kind: str = Field(description="order_placed, order_paid, order_cancelled or order_refunded")
    to_address: str
    subject: str
    text_body: str
    html_body: str
    sent_at: datetime


class EndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Annotated[StrictStr, Field(min_length=1, max_length=2000, description="http(s) URL to POST to")]
    event_types: Annotated[
        list[StrictStr],
        Field(min_length=1, max_length=len(EVENT_TYPES) + 1, description="Event types, or ['*'] for all"),
    ]
    description: Annotated[StrictStr, Field(max_length=500)] = ""

    @field_validator("event_types")
    @classmethod
    def known_types(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - {*EVENT_TYPES, "*"})
        if unknown:
            raise ValueError(f"unknown event types {unknown}; known: {list(EVENT_TYPES)} or '*'")
        return sorted(set(value))


class EndpointRead(BaseModel):
    id: int
    url: str
    event_types: list[str]
    description: str
    created_at: datetime


class EndpointCreated(EndpointRead):
    secret: str = Field(
        description="The signing secret (whsec_…), shown this once: store it to verify deliveries"
    )


class AttemptRead(BaseModel):
    attempt: int
    attempted_at: datetime
    duration_ms: int
    response_code: int | None
    error: str | None
    outcome: AttemptOutcome


class DeliveryRead(BaseModel):
    id: int
    endpoint_id: int
    event_id: UUID = Field(description="Also the webhook-id header of every attempt")
    type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None = Field(description="When pending: the next attempt's time")
    last_response_code: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    attempt_log: list[AttemptRead] = Field(description="Every attempt, oldest first")


class AlertRead(BaseModel):
    id: int
    product_id: int
    product_name: str
    threshold: int
    stock_at_open: int
    opened_at: datetime
    stock_at_close: int | None
    closed_at: datetime | None
    open: bool


class SalesDay(BaseModel):
    day: date
    units: int
    revenue_cents: int
    refunds_cents: int


class ProductSales(BaseModel):
    product_id: int
    units: int
    revenue_cents: int
    refunds_cents: int


class SalesReport(BaseModel):
    from_: date = Field(alias="from")
    to: date
    units: int
    revenue_cents: int
    refunds_cents: int
    days: list[SalesDay] = Field(description="Every day of the range, oldest first (zeros included)")
    top_products: list[ProductSales] = Field(description="By net revenue (revenue - refunds), at most 10")

    model_config = ConfigDict(populate_by_name=True)
