# mypy: disable-error-code="untyped-decorator"
# (strawberry.field with arguments is typed as returning Any.)
"""What the notifications worker did, as the admin reads it: emails, webhook endpoints and their deliveries,
low-stock alerts, sales figures."""

from datetime import date, datetime
from enum import Enum

import strawberry

from gateway.clients.notifications import (
    AlertRecord,
    AttemptRecord,
    DeliveryRecord,
    EmailRecord,
    EndpointRecord,
    ProductSalesRecord,
    SalesDayRecord,
    SalesReportRecord,
)
from gateway.errors import BadRequest, UserError
from gateway.types.product import Product
from gateway.types.scalars import Cents

MAX_DELIVERIES = 200  # notifications' cap on a page of the delivery log


@strawberry.type(description="An email the worker sent (the admin's Outgoing mail).")
class Email:
    id: strawberry.ID
    event_id: str = strawberry.field(description="The event it was sent for (also its Message-ID)")
    kind: str = strawberry.field(description="order_placed, order_paid, order_cancelled or order_refunded")
    to: str
    subject: str
    text_body: str = strawberry.field(description="The plain-text part, as sent")
    sent_at: datetime

    @classmethod
    def from_record(cls, record: EmailRecord) -> "Email":
        return cls(
            id=strawberry.ID(str(record.id)),
            event_id=str(record.event_id),
            kind=record.kind,
            to=record.to_address,
            subject=record.subject,
            text_body=record.text_body,
            sent_at=record.sent_at,
        )


@strawberry.type
class EmailPageInfo:
    end_cursor: str | None = strawberry.field(description="Pass as after for the older ones")
    has_next_page: bool


@strawberry.type
class EmailConnection:
    nodes: list[Email]
    page_info: EmailPageInfo


@strawberry.enum
class WebhookDeliveryStatus(Enum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@strawberry.enum
class WebhookAttemptOutcome(Enum):
    SUCCEEDED = "succeeded"
    RETRYING = "retrying"
    FAILED = "failed"


@strawberry.type(description="One try at delivering a webhook.")
class WebhookAttempt:
    attempt: int = strawberry.field(description="1 for the first try; counts on across redeliveries")
    attempted_at: datetime
    duration_ms: int
    response_code: int | None = strawberry.field(description="The receiver's HTTP status; null: no answer")
    error: str | None
    outcome: WebhookAttemptOutcome

    @classmethod
    def from_record(cls, record: AttemptRecord) -> "WebhookAttempt":
        return cls(
            attempt=record.attempt,
            attempted_at=record.attempted_at,
            duration_ms=record.duration_ms,
            response_code=record.response_code,
            error=record.error,
            outcome=WebhookAttemptOutcome(record.outcome),
        )


@strawberry.type(description="One event on its way to one endpoint, with every attempt.")
class WebhookDelivery:
    id: strawberry.ID
    event_id: str = strawberry.field(description="The webhook-id header of every attempt")
    event_type: str
    status: WebhookDeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_response_code: int | None
    last_error: str | None
    created_at: datetime
    completed_at: datetime | None
    attempt_log: list[WebhookAttempt] = strawberry.field(description="Oldest first")

    @classmethod
    def from_record(cls, record: DeliveryRecord) -> "WebhookDelivery":
        return cls(
            id=strawberry.ID(str(record.id)),
            event_id=str(record.event_id),
            event_type=record.type,
            status=WebhookDeliveryStatus(record.status),
            attempts=record.attempts,
            next_attempt_at=record.next_attempt_at,
            last_response_code=record.last_response_code,
            last_error=record.last_error,
            created_at=record.created_at,
            completed_at=record.completed_at,
            attempt_log=[WebhookAttempt.from_record(a) for a in record.attempt_log],
        )


@strawberry.type(description="A receiver of signed webhooks (Standard Webhooks). Its secret is never shown.")
class WebhookEndpoint:
    id: strawberry.ID
    url: str
    event_types: list[str] = strawberry.field(description="What it receives; ['*'] for every type")
    description: str
    created_at: datetime

    @strawberry.field(description=f"Its delivery log, latest first. first ≤ {MAX_DELIVERIES}.")
    async def deliveries(self, info: strawberry.Info, first: int = 20) -> list[WebhookDelivery]:
        if not 1 <= first <= MAX_DELIVERIES:
            raise BadRequest(f"first must be between 1 and {MAX_DELIVERIES}.")
        records = await info.context.notifications.list_deliveries(int(self.id), limit=first)
        return [WebhookDelivery.from_record(r) for r in records]

    @classmethod
    def from_record(cls, record: EndpointRecord) -> "WebhookEndpoint":
        return cls(
            id=strawberry.ID(str(record.id)),
            url=record.url,
            event_types=list(record.event_types),
            description=record.description,
            created_at=record.created_at,
        )


@strawberry.type
class RegisterWebhookEndpointPayload:
    endpoint: WebhookEndpoint | None = None
    secret: str | None = strawberry.field(
        default=None,
        description="The signing secret (whsec_…), in this answer only: store it to verify deliveries",
    )
    errors: list[UserError]


@strawberry.type
class DeleteWebhookEndpointPayload:
    deleted_id: strawberry.ID | None = None
    errors: list[UserError]


@strawberry.type
class RedeliverWebhookPayload:
    delivery: WebhookDelivery | None = None
    errors: list[UserError]


@strawberry.type(description="Stock fell to its low-stock threshold; closed when it rose above again.")
class LowStockAlert:
    id: strawberry.ID
    product_id: strawberry.ID
    product_name: str = strawberry.field(description="The product's name when the alert opened")
    threshold: int
    stock_at_open: int
    opened_at: datetime
    stock_at_close: int | None
    closed_at: datetime | None
    open: bool

    @classmethod
    def from_record(cls, record: AlertRecord) -> "LowStockAlert":
        return cls(
            id=strawberry.ID(str(record.id)),
            product_id=strawberry.ID(str(record.product_id)),
            product_name=record.product_name,
            threshold=record.threshold,
            stock_at_open=record.stock_at_open,
            opened_at=record.opened_at,
            stock_at_close=record.stock_at_close,
            closed_at=record.closed_at,
            open=record.open,
        )


@strawberry.type(description="One day's sales (UTC), from the order events.")
class SalesDay:
    day: date
    units: int
    revenue_cents: Cents
    refunds_cents: Cents

    @classmethod
    def from_record(cls, record: SalesDayRecord) -> "SalesDay":
        return cls(
            day=record.day,
            units=record.units,
            revenue_cents=Cents(record.revenue_cents),
            refunds_cents=Cents(record.refunds_cents),
        )


@strawberry.type
class ProductSales:
    product_id: strawberry.ID
    units: int
    revenue_cents: Cents
    refunds_cents: Cents

    @strawberry.field(description="null if inventory no longer has it")
    async def product(self, info: strawberry.Info) -> Product | None:
        record = await info.context.loaders.product.load(int(self.product_id))
        return Product.from_record(record) if record else None

    @classmethod
    def from_record(cls, record: ProductSalesRecord) -> "ProductSales":
        return cls(
            product_id=strawberry.ID(str(record.product_id)),
            units=record.units,
            revenue_cents=Cents(record.revenue_cents),
            refunds_cents=Cents(record.refunds_cents),
        )


@strawberry.type(description="Units, revenue and refunds per day over a range, and the top products.")
class SalesReport:
    first: date = strawberry.field(name="from")
    last: date = strawberry.field(name="to")
    units: int
    revenue_cents: Cents
    refunds_cents: Cents
    days: list[SalesDay] = strawberry.field(description="Every day of the range, oldest first, zeros too")
    top_products: list[ProductSales] = strawberry.field(
        description="By net revenue (revenue - refunds), at most 10"
    )

    @classmethod
    def from_record(cls, record: SalesReportRecord) -> "SalesReport":
        return cls(
            first=record.first,
            last=record.last,
            units=record.units,
            revenue_cents=Cents(record.revenue_cents),
            refunds_cents=Cents(record.refunds_cents),
            days=[SalesDay.from_record(d) for d in record.days],
            top_products=[ProductSales.from_record(p) for p in record.top_products],
        )
