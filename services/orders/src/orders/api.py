from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, status
from starlette.responses import JSONResponse, Response

from orders import service
from orders.schemas import OrderCreate, OrderPlaced, OrderRead, OrderStatus
from servicekit.db import EngineDep, SessionDep
from servicekit.errors import PROBLEM_RESPONSES
from servicekit.idempotency import Claim, run_idempotently, validate_key
from servicekit.validation import MAX_ID, JsonBody

router = APIRouter(tags=["orders"], responses=PROBLEM_RESPONSES, dependencies=[JsonBody])

OrderId = Annotated[int, Path(ge=1, le=MAX_ID, description="The order's id")]


@router.post("/orders", response_model=OrderPlaced, status_code=status.HTTP_201_CREATED)
async def place_order(
    request: Request,
    body: OrderCreate,
    engine: EngineDep,
    idempotency_key: Annotated[
        str | None,
        Header(alias="Idempotency-Key", description="Optional; the same key and body make one order"),
    ] = None,
) -> Response:
    key = validate_key(idempotency_key, required=False)

    async def handle(_claim: Claim | None) -> Response:
        placed = await service.place_order(engine, body.items, idempotency_key=key)
        return JSONResponse(placed.model_dump(), status_code=status.HTTP_201_CREATED)

    return await run_idempotently(
        request.app.state.idempotency, request, key, body.model_dump(mode="json", by_alias=True), handle
    )


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
    502: {**PROBLEM_RESPONSES[503], "description": "Payments refused the charge request"}
}


@router.post("/orders/{order_id}/capture", response_model=OrderRead, responses=PAYMENTS_REFUSED)
async def capture_payment(request: Request, engine: EngineDep, order_id: OrderId) -> OrderRead:
    """Charge the order's total through payments: PAID, or PAYMENT_FAILED with the reason (capture again to
    make a new attempt). A PAID order is returned as it is; nothing is charged twice, whatever is retried."""
    return await service.capture_payment(engine, request.app.state.payments, order_id)


@router.post("/orders/{order_id}/cancel", response_model=OrderRead)
async def cancel_order(engine: EngineDep, order_id: OrderId) -> OrderRead:
    return await service.cancel_order(engine, order_id)
