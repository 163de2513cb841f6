from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, status
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.responses import JSONResponse, Response

from orders import service
from orders.batcher import OrderBatcher
from orders.payments import PaymentsClient
from orders.schemas import AuthorizeIn, OrderCreate, OrderPlaced, OrderRead, RefundIn
from orders.settings import OrdersSettings
from servicekit.callers import allow
from servicekit.db import EngineDep, SessionDep
from servicekit.errors import PROBLEM_RESPONSES
from servicekit.idempotency import IdempotentRequest, OptionallyIdempotentRequest
from servicekit.rules import OrderStatus
from servicekit.validation import MAX_ID, JsonBody

# Who may call (servicekit.callers): the gateway only; the demo and the bench send the gateway's token.
CALLERS = allow(reads=["gateway"], writes=["gateway"])
router = APIRouter(tags=["orders"], responses=PROBLEM_RESPONSES, dependencies=[JsonBody])

OrderId = Annotated[int, Path(ge=1, le=MAX_ID, description="The order's id")]


async def _settings(request: Request) -> OrdersSettings:
    settings: OrdersSettings = request.app.state.settings
    return settings


async def _payments(request: Request) -> PaymentsClient:
    payments: PaymentsClient = request.app.state.payments
    return payments


# async dependencies: FastAPI runs a sync one in its thread pool, a cost the order hot path must not pay.
SettingsDep = Annotated[OrdersSettings, Depends(_settings)]
PaymentsDep = Annotated[PaymentsClient, Depends(_payments)]


@router.post("/orders", response_model=OrderPlaced, status_code=status.HTTP_201_CREATED)
async def place_order(
    body: OrderCreate, request: Request, idempotent: OptionallyIdempotentRequest
) -> Response:
    """Reserve the stock (all lines or nothing) until ``expires_at`` (ORDERS_RESERVATION_TTL_S)."""
    # The hot path does no per-request work it can skip: the engine, settings and batcher come from the app's
    # state, not as three dependencies (FastAPI solving a dependency is ~30 µs of CPU each, and solving this
    # route's was a fifth of its CPU); the body is re-serialized only for a key's fingerprint, and the answer
    # is rendered by pydantic straight to JSON bytes.
    state = request.app.state
    engine: AsyncEngine = state.engine
    settings: OrdersSettings = state.settings
    batcher: OrderBatcher | None = state.batcher

    async def handle() -> Response:
        placed = await service.place_order(
            engine,
            body.items,
            reservation_s=settings.reservation_ttl_s,
            customer=body.customer,
            idempotency_key=idempotent.key,
            batcher=batcher,
        )
        return Response(
            placed.model_dump_json(), status_code=status.HTTP_201_CREATED, media_type="application/json"
        )

    payload = body.model_dump(mode="json", by_alias=True) if idempotent.key is not None else None
    return await idempotent.run(payload, handle)


@router.get("/orders/{order_id}", response_model=OrderRead)
async def get_order(session: SessionDep, order_id: OrderId) -> OrderRead:
    return await service.get_order(session, order_id)


@router.get("/orders", response_model=list[OrderRead])
async def list_orders(
    session: SessionDep,
    status_filter: Annotated[OrderStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    after: Annotated[
        int | None,
        Query(ge=1, le=MAX_ID, description="Newest first: pass the last id seen for the next page"),
    ] = None,
) -> list[OrderRead]:
    return await service.list_orders(session, status=status_filter, after=after, limit=limit)


PAYMENTS_REFUSED: dict[int | str, dict[str, Any]] = {
    502: {**PROBLEM_RESPONSES[503], "description": "Payments refused the request"}
}


@router.post("/orders/{order_id}/authorize", response_model=OrderRead, responses=PAYMENTS_REFUSED)
async def authorize_payment(
    engine: EngineDep, payments: PaymentsDep, settings: SettingsDep, order_id: OrderId, body: AuthorizeIn
) -> OrderRead:
    """Authorize the order's total on the card: AUTHORIZED, or PAYMENT_FAILED with the reason (authorize
    again with another card). AUTHORIZED and PAID orders answer as they are; the card number is never stored
    or logged."""
    return await service.authorize_payment(
        engine, payments, order_id, body.card_number, budget_s=settings.payments_budget_s
    )


@router.post("/orders/{order_id}/capture", response_model=OrderRead, responses=PAYMENTS_REFUSED)
async def capture_payment(
    engine: EngineDep, payments: PaymentsDep, settings: SettingsDep, order_id: OrderId
) -> OrderRead:
    """Capture the authorization in full (AUTHORIZED → PAID); PAID and REFUNDED answer as they are."""
    return await service.capture_payment(engine, payments, order_id, budget_s=settings.payments_budget_s)


@router.post("/orders/{order_id}/cancel", response_model=OrderRead, responses=PAYMENTS_REFUSED)
async def cancel_order(
    engine: EngineDep, payments: PaymentsDep, settings: SettingsDep, order_id: OrderId
) -> OrderRead:
    """Stock back once; the authorization voided or the capture refunded (now, or by the reconciler)."""
    return await service.cancel_order(engine, payments, order_id, budget_s=settings.payments_budget_s)


@router.post(
    "/orders/{order_id}/refunds",
    response_model=OrderRead,
    status_code=status.HTTP_201_CREATED,
    responses=PAYMENTS_REFUSED,
)
async def refund_payment(
    engine: EngineDep,
    payments: PaymentsDep,
    settings: SettingsDep,
    order_id: OrderId,
    body: RefundIn,
    idempotent: IdempotentRequest,
) -> Response:
    """Refund part of a PAID order's capture; the whole remainder makes it REFUNDED. Refunds never restock."""

    async def handle() -> Response:
        order = await service.refund_payment(
            engine,
            payments,
            order_id,
            amount_cents=body.amount_cents,
            reason=body.reason,
            client_key=idempotent.required_key,
            budget_s=settings.payments_budget_s,
        )
        return JSONResponse(order.model_dump(mode="json"), status_code=status.HTTP_201_CREATED)

    return await idempotent.run(body.model_dump(mode="json"), handle)
