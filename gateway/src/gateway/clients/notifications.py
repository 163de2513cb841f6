from datetime import date, datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from gateway.clients.base import UpstreamClient
from gateway.ids import MAX_ID

DeliveryStatusName = Literal["pending", "succeeded", "failed"]
AttemptOutcomeName = Literal["succeeded", "retrying", "failed"]
MAX_LIMIT = 200  # notifications' cap on every list's limit


class EmailRecord(BaseModel):
    id: int
    event_id: UUID
    kind: str
    to_address: str
    subject: str
    text_body: str
    sent_at: datetime


class EndpointRecord(BaseModel):
    id: int
    url: str
    event_types: list[str]
    description: str
    created_at: datetime


class EndpointCreatedRecord(EndpointRecord):
    secret: str


class AttemptRecord(BaseModel):
    attempt: int
    attempted_at: datetime
    duration_ms: int
    response_code: int | None
    error: str | None
    outcome: AttemptOutcomeName


class DeliveryRecord(BaseModel):
    id: int
    endpoint_id: int
    event_id: UUID
    type: str
    status: DeliveryStatusName
    attempts: int
    next_attempt_at: datetime | None
    last_response_code: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    attempt_log: list[AttemptRecord]


class AlertRecord(BaseModel):
    id: int
    product_id: int
    product_name: str
    threshold: int
    stock_at_open: int
    opened_at: datetime
    stock_at_close: int | None
    closed_at: datetime | None
    open: bool


class SalesDayRecord(BaseModel):
    day: date
    units: int
    revenue_cents: int
    refunds_cents: int


class ProductSalesRecord(BaseModel):
    product_id: int
    units: int
    revenue_cents: int
    refunds_cents: int


class SalesReportRecord(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    first: date = Field(alias="from")
    last: date = Field(alias="to")
    units: int
    revenue_cents: int
    refunds_cents: int
    days: list[SalesDayRecord]
    top_products: list[ProductSalesRecord]


_emails = TypeAdapter(list[EmailRecord])
_endpoints = TypeAdapter(list[EndpointRecord])
_deliveries = TypeAdapter(list[DeliveryRecord])
_alerts = TypeAdapter(list[AlertRecord])
_names = TypeAdapter(list[str])


class NotificationsClient(UpstreamClient):
    """The worker's API: what it sent and delivered, the webhook endpoints, alerts and sales figures. Only the
    admin's fields use it; shopping never waits on it (it is not in the gateway's readiness)."""

    service = "notifications"

    async def list_emails(self, *, limit: int, before: int | None = None) -> list[EmailRecord]:
        """Latest first; ``before``: only ids below it (the next page)."""
        params = {"limit": str(limit)} | ({"before": str(before)} if before is not None else {})
        response = await self.request("GET", "/emails", params=params)
        return _emails.validate_json(response.content)

    async def list_endpoints(self) -> list[EndpointRecord]:
        response = await self.request("GET", "/webhooks/endpoints")
        return _endpoints.validate_json(response.content)

    async def get_endpoint(self, endpoint_id: int) -> EndpointRecord:
        response = await self.request("GET", f"/webhooks/endpoints/{endpoint_id}")
        return EndpointRecord.model_validate_json(response.content)

    async def create_endpoint(
        self, *, url: str, event_types: list[str], description: str
    ) -> EndpointCreatedRecord:
        body = {"url": url, "event_types": event_types, "description": description}
        response = await self.request("POST", "/webhooks/endpoints", json=body)
        return EndpointCreatedRecord.model_validate_json(response.content)

    async def delete_endpoint(self, endpoint_id: int) -> None:
        await self.request("DELETE", f"/webhooks/endpoints/{endpoint_id}")

    async def list_deliveries(self, endpoint_id: int, *, limit: int) -> list[DeliveryRecord]:
        response = await self.request(
            "GET", f"/webhooks/endpoints/{endpoint_id}/deliveries", params={"limit": str(limit)}
        )
        return _deliveries.validate_json(response.content)

    async def redeliver(self, delivery_id: int) -> DeliveryRecord:
        response = await self.request("POST", f"/webhooks/deliveries/{delivery_id}/redeliver")
        return DeliveryRecord.model_validate_json(response.content)

    async def list_alerts(self, *, limit: int) -> list[AlertRecord]:
        response = await self.request("GET", "/alerts", params={"state": "all", "limit": str(limit)})
        return _alerts.validate_json(response.content)

    async def sales_report(self, first: date, last: date) -> SalesReportRecord:
        params = {"from": first.isoformat(), "to": last.isoformat()}
        response = await self.request("GET", "/sales", params=params)
        return SalesReportRecord.model_validate_json(response.content)

    async def list_event_types(self) -> list[str]:
        response = await self.request("GET", "/webhooks/event-types")
        return _names.validate_json(response.content)

    async def get_email(self, email_id: int) -> EmailRecord | None:
        """The email with this id: the first of those below id + 1 (the list's own keyset paging), so the
        worker's API needs no route of its own for one email."""
        found = await self.list_emails(limit=1, before=min(email_id + 1, MAX_ID))
        return found[0] if found and found[0].id == email_id else None
