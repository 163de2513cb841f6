from datetime import UTC, date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status

from notifications import service
from notifications.clock import Clock
from notifications.events import EVENT_TYPES
from notifications.schemas import (
    AlertRead,
    DeliveryRead,
    EmailRead,
    EndpointCreate,
    EndpointCreated,
    EndpointRead,
    SalesReport,
)
from notifications.settings import NotificationsSettings
from notifications.worker import Worker
from servicekit.callers import allow
from servicekit.db import SessionDep
from servicekit.errors import PROBLEM_RESPONSES
from servicekit.validation import MAX_ID, JsonBody

# Who may call (servicekit.callers): the gateway, like every service; nothing else reads mail or registers
# webhooks.
CALLERS = allow(reads=["gateway"], writes=["gateway"])

router = APIRouter(responses=PROBLEM_RESPONSES, dependencies=[JsonBody])

EndpointId = Annotated[int, Path(ge=1, le=MAX_ID, description="The webhook endpoint's id")]
DeliveryId = Annotated[int, Path(ge=1, le=MAX_ID, description="The delivery's id")]
Limit = Annotated[int, Query(ge=1, le=200, description="Latest first")]
Before = Annotated[int | None, Query(ge=1, le=MAX_ID, description="Only ids below this one (next page)")]


async def _settings(request: Request) -> NotificationsSettings:
    settings: NotificationsSettings = request.app.state.settings
    return settings


async def _clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


async def _worker(request: Request) -> Worker | None:
    """The worker in this process, or None when it runs elsewhere (NOTIFICATIONS_WORKER_ENABLED=false)."""
    worker: Worker | None = getattr(request.app.state, "worker", None)
    return worker


# async dependencies, as in the other services (a sync one would run in the thread pool).
SettingsDep = Annotated[NotificationsSettings, Depends(_settings)]
ClockDep = Annotated[Clock, Depends(_clock)]
WorkerDep = Annotated[Worker | None, Depends(_worker)]


@router.get("/emails", response_model=list[EmailRead], tags=["emails"])
async def list_emails(session: SessionDep, limit: Limit = 50, before: Before = None) -> list[EmailRead]:
    """What the worker sent (the admin's Outgoing mail page), latest first."""
    return await service.list_emails(await session.connection(), limit, before)


@router.post(
    "/webhooks/endpoints",
    response_model=EndpointCreated,
    status_code=status.HTTP_201_CREATED,
    tags=["webhooks"],
)
async def create_endpoint(
    session: SessionDep, settings: SettingsDep, body: EndpointCreate
) -> EndpointCreated:
    """Register an endpoint. The answer carries its signing secret, this once only."""
    return await service.create_endpoint(
        await session.connection(), body, allow_private=settings.webhooks_allow_private
    )


@router.get("/webhooks/event-types", response_model=list[str], tags=["webhooks"])
async def list_event_types() -> list[str]:
    """The event types an endpoint may subscribe to (or '*' for all): the admin's checkboxes."""
    return list(EVENT_TYPES)


@router.get("/webhooks/endpoints", response_model=list[EndpointRead], tags=["webhooks"])
async def list_endpoints(session: SessionDep) -> list[EndpointRead]:
    return await service.list_endpoints(await session.connection())


@router.get("/webhooks/endpoints/{endpoint_id}", response_model=EndpointRead, tags=["webhooks"])
async def get_endpoint(session: SessionDep, endpoint_id: EndpointId) -> EndpointRead:
    return await service.get_endpoint(await session.connection(), endpoint_id)


@router.delete("/webhooks/endpoints/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["webhooks"])
async def delete_endpoint(session: SessionDep, endpoint_id: EndpointId) -> Response:
    """Stop delivering to it (its pending deliveries fail); its delivery log stays readable."""
    await service.delete_endpoint(await session.connection(), endpoint_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/webhooks/endpoints/{endpoint_id}/deliveries", response_model=list[DeliveryRead], tags=["webhooks"]
)
async def list_deliveries(
    session: SessionDep, endpoint_id: EndpointId, limit: Limit = 50, before: Before = None
) -> list[DeliveryRead]:
    """The endpoint's delivery log, latest first, each with every attempt."""
    return await service.list_deliveries(await session.connection(), endpoint_id, limit, before)


@router.post("/webhooks/deliveries/{delivery_id}/redeliver", response_model=DeliveryRead, tags=["webhooks"])
async def redeliver(
    session: SessionDep, clock: ClockDep, worker: WorkerDep, delivery_id: DeliveryId
) -> DeliveryRead:
    """Send it again now, from the start of the retry schedule (same webhook-id)."""
    delivery = await service.redeliver(await session.connection(), delivery_id, clock)
    if worker is not None:
        worker.wake()
    return delivery


@router.get("/alerts", response_model=list[AlertRead], tags=["alerts"])
async def list_alerts(
    session: SessionDep,
    state: Annotated[Literal["open", "closed", "all"], Query(description="Which alerts")] = "all",
    limit: Limit = 100,
) -> list[AlertRead]:
    """Low-stock alerts, latest first: open ones, and the history."""
    return await service.list_alerts(await session.connection(), state, limit)


@router.get("/sales", response_model=SalesReport, response_model_by_alias=True, tags=["sales"])
async def sales_report(
    session: SessionDep,
    first: Annotated[
        date | None, Query(alias="from", description="First day (UTC); default to - 29 days")
    ] = None,
    last: Annotated[
        date | None, Query(alias="to", description="Last day (UTC), included; default today")
    ] = None,
) -> SalesReport:
    """Units, revenue and refunds per day, and the top products, from the events alone."""
    return await service.sales_report(await session.connection(), first, last, datetime.now(UTC).date())
