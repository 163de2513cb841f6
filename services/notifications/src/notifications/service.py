"""The API's use cases: read what the worker did, manage webhook endpoints, redeliver."""

from datetime import date, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from notifications import repository, webhooks
from notifications.clock import Clock
from notifications.errors import DeliveryNotFound, EndpointDeleted, EndpointNotFound, InvalidDateRange
from notifications.schemas import (
    AlertRead,
    DeliveryRead,
    EmailRead,
    EndpointCreate,
    EndpointCreated,
    EndpointRead,
    SalesReport,
)

MAX_REPORT_DAYS = 366
TOP_PRODUCTS = 10


async def list_emails(conn: AsyncConnection, limit: int, before_id: int | None) -> list[EmailRead]:
    return [EmailRead.model_validate(r) for r in await repository.list_emails(conn, limit, before_id)]


async def create_endpoint(
    conn: AsyncConnection, body: EndpointCreate, *, allow_private: bool
) -> EndpointCreated:
    await webhooks.check_url(body.url, allow_private=allow_private)
    row = await repository.create_endpoint(
        conn,
        url=body.url,
        event_types=body.event_types,
        description=body.description,
        secret=webhooks.new_secret(),
    )
    return EndpointCreated.model_validate(row)


async def _endpoint(conn: AsyncConnection, endpoint_id: int) -> dict[str, Any]:
    row = await repository.get_endpoint(conn, endpoint_id)
    if row is None or row["deleted_at"] is not None:
        raise EndpointNotFound(f"There is no webhook endpoint {endpoint_id}.", endpoint_id=endpoint_id)
    return row


async def list_endpoints(conn: AsyncConnection) -> list[EndpointRead]:
    return [EndpointRead.model_validate(r) for r in await repository.list_endpoints(conn)]


async def get_endpoint(conn: AsyncConnection, endpoint_id: int) -> EndpointRead:
    return EndpointRead.model_validate(await _endpoint(conn, endpoint_id))


async def delete_endpoint(conn: AsyncConnection, endpoint_id: int) -> None:
    if not await repository.delete_endpoint(conn, endpoint_id):
        raise EndpointNotFound(f"There is no webhook endpoint {endpoint_id}.", endpoint_id=endpoint_id)


async def _with_attempts(conn: AsyncConnection, rows: list[dict[str, Any]]) -> list[DeliveryRead]:
    attempts = await repository.attempts_of(conn, [r["id"] for r in rows])
    by_delivery: dict[int, list[dict[str, Any]]] = {}
    for attempt in attempts:
        by_delivery.setdefault(attempt["delivery_id"], []).append(attempt)
    return [
        DeliveryRead.model_validate(
            {
                **r,
                "next_attempt_at": r["next_attempt_at"] if r["status"] == "pending" else None,
                "attempt_log": by_delivery.get(r["id"], []),
            }
        )
        for r in rows
    ]


async def list_deliveries(
    conn: AsyncConnection, endpoint_id: int, limit: int, before_id: int | None
) -> list[DeliveryRead]:
    row = await repository.get_endpoint(conn, endpoint_id)
    if row is None:  # a deleted endpoint's log stays readable
        raise EndpointNotFound(f"There is no webhook endpoint {endpoint_id}.", endpoint_id=endpoint_id)
    return await _with_attempts(conn, await repository.list_deliveries(conn, endpoint_id, limit, before_id))


async def redeliver(conn: AsyncConnection, delivery_id: int, clock: Clock) -> DeliveryRead:
    delivery = await repository.get_delivery(conn, delivery_id)
    if delivery is None:
        raise DeliveryNotFound(f"There is no webhook delivery {delivery_id}.", delivery_id=delivery_id)
    endpoint = await repository.get_endpoint(conn, delivery["endpoint_id"])
    if endpoint is None or endpoint["deleted_at"] is not None:
        raise EndpointDeleted(f"Delivery {delivery_id}'s endpoint was deleted.", delivery_id=delivery_id)
    refreshed = None
    if await repository.redeliver(conn, delivery_id, clock.now()):
        refreshed = await repository.get_delivery(conn, delivery_id)
    if refreshed is None:  # pruned with its event (older than the outbox's retention) meanwhile
        raise DeliveryNotFound(f"There is no webhook delivery {delivery_id}.", delivery_id=delivery_id)
    return (await _with_attempts(conn, [refreshed]))[0]


async def list_alerts(conn: AsyncConnection, state: str, limit: int) -> list[AlertRead]:
    return [
        AlertRead.model_validate({**r, "open": r["closed_at"] is None})
        for r in await repository.list_alerts(conn, state, limit)
    ]


async def sales_report(
    conn: AsyncConnection, first: date | None, last: date | None, today: date
) -> SalesReport:
    last = last or today
    if first is None:
        if last - date.min < timedelta(days=29):  # date.min minus a month is no date at all
            raise InvalidDateRange("'to' is too early for a default 'from'; give 'from' as well.")
        first = last - timedelta(days=29)
    if first > last:
        raise InvalidDateRange("'from' is after 'to'.", first=first.isoformat(), last=last.isoformat())
    if (last - first).days + 1 > MAX_REPORT_DAYS:
        raise InvalidDateRange(f"A report covers at most {MAX_REPORT_DAYS} days.")
    days = await repository.sales_by_day(conn, first, last)
    top = await repository.top_products(conn, first, last, TOP_PRODUCTS)
    return SalesReport.model_validate(
        {
            "from": first,
            "to": last,
            "units": sum(d["units"] for d in days),
            "revenue_cents": sum(d["revenue_cents"] for d in days),
            "refunds_cents": sum(d["refunds_cents"] for d in days),
            "days": days,
            "top_products": top,
        }
    )
