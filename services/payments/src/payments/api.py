from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, status
from starlette.responses import JSONResponse, Response

from payments import service
from payments.schemas import ChargeCreate, ChargeRead, ChargeResult
from servicekit.db import EngineDep, SessionDep
from servicekit.errors import PROBLEM_RESPONSES
from servicekit.idempotency import MAX_KEY_LENGTH, Claim, run_idempotently, validate_key
from servicekit.validation import MAX_ID, JsonBody

router = APIRouter(tags=["charges"], responses=PROBLEM_RESPONSES, dependencies=[JsonBody])

ChargeId = Annotated[int, Path(ge=1, le=MAX_ID, description="The charge's id")]


@router.post("/charges", response_model=ChargeResult, status_code=status.HTTP_201_CREATED)
async def create_charge(
    request: Request,
    body: ChargeCreate,
    engine: EngineDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description=f"Required, 1 to {MAX_KEY_LENGTH} characters: the same key and body make one charge",
        ),
    ] = None,
) -> Response:
    """Charge an order. Declines are answers too (201, status ``failed``), stored and replayed like successes.

    Test amounts: ``amount_cents % 100 == 2`` declines with ``card_declined``, ``% 100 == 5`` with
    ``insufficient_funds``; anything else succeeds.
    """
    key = validate_key(idempotency_key, required=True)
    assert key is not None

    async def handle(_claim: Claim | None) -> Response:
        result = await service.create_charge(engine, request.app.state.processor, body, idempotency_key=key)
        return JSONResponse(result.model_dump(mode="json"), status_code=status.HTTP_201_CREATED)

    return await run_idempotently(
        request.app.state.idempotency, request, key, body.model_dump(mode="json"), handle
    )


@router.get("/charges/{charge_id}", response_model=ChargeRead)
async def get_charge(session: SessionDep, charge_id: ChargeId) -> ChargeRead:
    return await service.get_charge(session, charge_id)


@router.get("/charges", response_model=list[ChargeRead])
async def list_charges(
    session: SessionDep,
    order_id: Annotated[int, Query(ge=1, le=MAX_ID, description="The order whose charges to list")],
    limit: Annotated[int, Query(ge=1, le=100, description="Oldest first")] = 100,
) -> list[ChargeRead]:
    return await service.list_charges(session, order_id, limit)
