# mypy: disable-error-code="untyped-decorator"
# (strawberry.field/mutation with arguments are typed as returning Any, so every resolver would be flagged.)
"""The admin's fields over the notifications worker: outgoing mail, webhook endpoints and deliveries,
low-stock alerts, sales. Kept apart from the shop's queries and mutations; schema.py joins them into the
roots. Every field here is admin-only."""

from datetime import UTC, date, datetime, timedelta
from typing import Annotated

import strawberry

from gateway.clients.base import UpstreamError
from gateway.clients.notifications import MAX_LIMIT
from gateway.context import Context
from gateway.errors import BadRequest, UserError, invalid_input, no_such
from gateway.ids import parse_id
from gateway.mutations import upstream
from gateway.permissions import Requires
from gateway.scopes import Scope
from gateway.types.notifications import (
    DeleteWebhookEndpointPayload,
    Email,
    EmailConnection,
    EmailPageInfo,
    LowStockAlert,
    RedeliverWebhookPayload,
    RegisterWebhookEndpointPayload,
    SalesReport,
    WebhookDelivery,
    WebhookEndpoint,
)

# notifications' own caps (its service.MAX_REPORT_DAYS, its EndpointCreate): checked here too, so a bad
# range is BAD_REQUEST with a message of ours before anything is asked.
MAX_REPORT_DAYS = 366
DEFAULT_REPORT_DAYS = 30
MAX_URL = 2_000
MAX_DESCRIPTION = 500


def _check_first(first: int) -> None:
    if not 1 <= first <= MAX_LIMIT:
        raise BadRequest(f"first must be between 1 and {MAX_LIMIT}.")


def report_range(first: date | None, last: date | None, today: date) -> tuple[date, date]:
    """The days a sales report covers: ``to`` defaults to today (UTC), ``from`` to the 30 days ending at
    ``to``; BAD_REQUEST for from > to or more than MAX_REPORT_DAYS days."""
    last = last or today
    if first is None:
        if (last - date.min).days < DEFAULT_REPORT_DAYS - 1:
            raise BadRequest("to is too early for a default from; give from as well.")
        first = last - timedelta(days=DEFAULT_REPORT_DAYS - 1)
    if first > last:
        raise BadRequest(f"from ({first.isoformat()}) is after to ({last.isoformat()}).")
    if (last - first).days + 1 > MAX_REPORT_DAYS:
        raise BadRequest(f"A sales report covers at most {MAX_REPORT_DAYS} days.")
    return first, last


@strawberry.type
class NotificationsQuery:
    @strawberry.field(
        permission_classes=[Requires[Scope.MAIL_READ]],
        description=f"Admin only. The emails the worker sent, latest first: pass pageInfo.endCursor as after "
        f"for older ones. first ≤ {MAX_LIMIT}.",
    )
    async def emails(
        self, info: strawberry.Info[Context, None], first: int = 50, after: str | None = strawberry.UNSET
    ) -> EmailConnection:
        _check_first(first)
        before = parse_id(after) if after else None
        if after and before is None:
            raise BadRequest("after must be an endCursor from a previous page.")
        client = info.context.notifications
        # One more than asked says whether there is an older page (the API's cap is MAX_LIMIT).
        rows = await client.list_emails(limit=min(first + 1, MAX_LIMIT), before=before)
        has_next = len(rows) > first
        if not has_next and len(rows) == first == MAX_LIMIT:
            has_next = bool(await client.list_emails(limit=1, before=rows[-1].id))
        rows = rows[:first]
        return EmailConnection(
            nodes=[Email.from_record(r) for r in rows],
            page_info=EmailPageInfo(end_cursor=str(rows[-1].id) if rows else None, has_next_page=has_next),
        )

    @strawberry.field(
        permission_classes=[Requires[Scope.MAIL_READ]], description="Admin only. null when there is none."
    )
    async def email(self, info: strawberry.Info[Context, None], id: strawberry.ID) -> Email | None:  # noqa: A002
        email_id = parse_id(id)
        if email_id is None:
            return None
        record = await info.context.notifications.get_email(email_id)
        return Email.from_record(record) if record else None

    @strawberry.field(
        permission_classes=[Requires[Scope.WEBHOOKS_READ]],
        description="Admin only. The event types an endpoint may receive.",
    )
    async def webhook_event_types(self, info: strawberry.Info[Context, None]) -> list[str]:
        types: list[str] = await info.context.notifications.list_event_types()
        return types

    @strawberry.field(
        permission_classes=[Requires[Scope.WEBHOOKS_READ]], description="Admin only. Oldest first."
    )
    async def webhook_endpoints(self, info: strawberry.Info[Context, None]) -> list[WebhookEndpoint]:
        return [WebhookEndpoint.from_record(r) for r in await info.context.notifications.list_endpoints()]

    @strawberry.field(
        permission_classes=[Requires[Scope.WEBHOOKS_READ]],
        description="Admin only. null when there is none (or it was deleted).",
    )
    async def webhook_endpoint(
        self,
        info: strawberry.Info[Context, None],
        id: strawberry.ID,  # noqa: A002
    ) -> WebhookEndpoint | None:
        endpoint_id = parse_id(id)
        if endpoint_id is None:
            return None
        try:
            record = await info.context.notifications.get_endpoint(endpoint_id)
        except UpstreamError as exc:
            if exc.status == 404:
                return None
            raise
        return WebhookEndpoint.from_record(record)

    @strawberry.field(
        permission_classes=[Requires[Scope.CATALOG_READ]],
        description=f"Admin only. Low-stock alerts, open and closed, latest first. first ≤ {MAX_LIMIT}.",
    )
    async def low_stock_alerts(
        self, info: strawberry.Info[Context, None], first: int = 100
    ) -> list[LowStockAlert]:
        _check_first(first)
        records = await info.context.notifications.list_alerts(limit=first)
        return [LowStockAlert.from_record(r) for r in records]

    @strawberry.field(
        permission_classes=[Requires[Scope.SALES_READ]],
        description=f"Admin only. Sales per day (UTC) from `from` to `to`, both included, and the top "
        f"products. Defaults: to = today, from = the {DEFAULT_REPORT_DAYS} days up to `to`; at most "
        f"{MAX_REPORT_DAYS} days.",
    )
    async def sales_report(
        self,
        info: strawberry.Info[Context, None],
        first: Annotated[date | None, strawberry.argument(name="from")] = None,
        last: Annotated[date | None, strawberry.argument(name="to")] = None,
    ) -> SalesReport:
        start, end = report_range(first, last, datetime.now(UTC).date())
        try:
            record = await info.context.notifications.sales_report(start, end)
        except UpstreamError as exc:
            if exc.code == "invalid_date_range":  # its cap changed under us: still the client's range
                raise BadRequest("The worker refused this date range.") from exc
            raise
        return SalesReport.from_record(record)


@strawberry.type
class NotificationsMutation:
    @strawberry.mutation(
        permission_classes=[Requires[Scope.WEBHOOKS_WRITE]],
        description="Admin. Register a webhook endpoint for these event types (['*'] for all). The answer "
        "carries its signing secret, this once only.",
    )
    async def register_webhook_endpoint(
        self,
        info: strawberry.Info[Context, None],
        url: str,
        event_types: list[str],
        description: str | None = strawberry.UNSET,
    ) -> RegisterWebhookEndpointPayload:
        url = url.strip()
        text = description.strip() if isinstance(description, str) else ""
        errors: list[UserError] = []
        if not url:
            errors.append(invalid_input("url", "Enter the URL to send webhooks to."))
        elif len(url) > MAX_URL or not url.isprintable():
            errors.append(invalid_input("url", f"A URL is at most {MAX_URL} printable characters."))
        if not event_types:
            errors.append(invalid_input("eventTypes", "Choose at least one event type."))
        if len(text) > MAX_DESCRIPTION or not text.isprintable():
            errors.append(invalid_input("description", f"At most {MAX_DESCRIPTION} printable characters."))
        if errors:
            return RegisterWebhookEndpointPayload(errors=errors)
        created, errors = await upstream(
            info.context.notifications.create_endpoint(
                url=url, event_types=sorted(set(event_types)), description=text
            ),
            prefix="",
        )
        if created is None:
            return RegisterWebhookEndpointPayload(errors=errors)
        return RegisterWebhookEndpointPayload(
            endpoint=WebhookEndpoint.from_record(created), secret=created.secret, errors=[]
        )

    @strawberry.mutation(
        permission_classes=[Requires[Scope.WEBHOOKS_WRITE]],
        description="Admin. Stop delivering to the endpoint (its pending deliveries fail); its log stays.",
    )
    async def delete_webhook_endpoint(
        self,
        info: strawberry.Info[Context, None],
        id: strawberry.ID,  # noqa: A002
    ) -> DeleteWebhookEndpointPayload:
        endpoint_id = parse_id(id)
        if endpoint_id is None:
            return DeleteWebhookEndpointPayload(errors=no_such("id", "webhook endpoint"))
        _, errors = await upstream(info.context.notifications.delete_endpoint(endpoint_id), id_field="id")
        if errors:
            return DeleteWebhookEndpointPayload(errors=errors)
        return DeleteWebhookEndpointPayload(deleted_id=strawberry.ID(str(endpoint_id)), errors=[])

    @strawberry.mutation(
        permission_classes=[Requires[Scope.WEBHOOKS_WRITE]],
        description="Admin. Send the delivery again now, from the start of its retry schedule (same "
        "webhook-id, so a receiver that dedupes applies it once).",
    )
    async def redeliver_webhook(
        self, info: strawberry.Info[Context, None], delivery_id: strawberry.ID
    ) -> RedeliverWebhookPayload:
        parsed = parse_id(delivery_id)
        if parsed is None:
            return RedeliverWebhookPayload(errors=no_such("deliveryId", "webhook delivery"))
        record, errors = await upstream(
            info.context.notifications.redeliver(parsed), prefix="", id_field="deliveryId"
        )
        return RedeliverWebhookPayload(
            delivery=WebhookDelivery.from_record(record) if record else None, errors=errors
        )
