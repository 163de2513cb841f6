from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, status
from pydantic import BaseModel
from starlette.responses import JSONResponse, Response

from payments import service
from payments.cards import parse_card
from payments.schemas import NoBody, PaymentCreate, PaymentRead, RefundCreate, RefundResult
from servicekit.callers import allow
from servicekit.db import EngineDep, SessionDep
from servicekit.errors import PROBLEM_RESPONSES
from servicekit.idempotency import MAX_KEY_LENGTH, run_idempotently, validate_key
from servicekit.validation import MAX_ID, JsonBody

# Who may call (servicekit.callers): orders moves money; the gateway and orders read payments.
CALLERS = allow(reads=["gateway", "orders"], writes=["orders"])
router = APIRouter(tags=["payments"], responses=PROBLEM_RESPONSES, dependencies=[JsonBody])

PaymentId = Annotated[int, Path(ge=1, le=MAX_ID, description="The payment's id")]


def _required_key(
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description=f"Required, 1 to {MAX_KEY_LENGTH} characters: the same key and body do it once",
        ),
    ] = None,
) -> str:
    key = validate_key(idempotency_key, required=True)
    assert key is not None
    return key


IdempotencyKey = Annotated[str, Depends(_required_key)]


async def _once(
    request: Request,
    key: str,
    fingerprint_payload: dict[str, Any],
    status_code: int,
    run: Callable[[], Awaitable[BaseModel]],
) -> Response:
    """Run ``run`` at most once per key and answer its result (stored, and replayed to later requests)."""

    async def handle(_claim: object) -> Response:
        result = await run()
        return JSONResponse(result.model_dump(mode="json"), status_code=status_code)

    return await run_idempotently(request.app.state.idempotency, request, key, fingerprint_payload, handle)


@router.post("/payments", response_model=PaymentRead, status_code=status.HTTP_201_CREATED)
async def authorize_payment(
    request: Request, body: PaymentCreate, engine: EngineDep, key: IdempotencyKey
) -> Response:
    """Authorize ``amount_cents`` on the card for the order. A decline is an answer too (201, status
    ``declined``), stored and replayed like an authorization.

    Test cards: 4000 0000 0000 0002 declines ``card_declined``, 4000 0000 0000 9995 ``insufficient_funds``;
    any other Luhn-valid number authorizes.
    """
    card = parse_card(body.card_number)  # 422 invalid_card before the key is claimed: it stays free
    # The fingerprint names the card by brand and last four, never by number: it is stored with the key,
    # and a hash of a card number is no protection (the numbers of one brand and last four that pass Luhn
    # are few enough to enumerate). Two cards sharing both are treated as the same card for this key.
    fingerprint_payload = {
        "order_id": body.order_id,
        "amount_cents": body.amount_cents,
        "card_brand": card.brand,
        "card_last4": card.last4,
    }
    settings = request.app.state.settings

    async def run() -> BaseModel:
        return await service.authorize(
            engine,
            request.app.state.processor,
            order_id=body.order_id,
            amount_cents=body.amount_cents,
            card=card,
            idempotency_key=key,
            authorization_ttl_h=settings.authorization_ttl_h,
        )

    return await _once(request, key, fingerprint_payload, status.HTTP_201_CREATED, run)


@router.post("/payments/{payment_id}/capture", response_model=PaymentRead)
async def capture_payment(
    request: Request,
    payment_id: PaymentId,
    engine: EngineDep,
    key: IdempotencyKey,
    _body: NoBody | None = None,
) -> Response:
    """Capture the full authorized amount. Captured (or refunded) already: 200 as it is."""

    async def run() -> BaseModel:
        return await service.capture(engine, request.app.state.processor, payment_id)

    return await _once(request, key, {}, status.HTTP_200_OK, run)


@router.post("/payments/{payment_id}/void", response_model=PaymentRead)
async def void_payment(
    request: Request,
    payment_id: PaymentId,
    engine: EngineDep,
    key: IdempotencyKey,
    _body: NoBody | None = None,
) -> Response:
    """Release the authorization without taking money (also once it expired). Voided already: 200 as it is."""

    async def run() -> BaseModel:
        return await service.void(engine, request.app.state.processor, payment_id)

    return await _once(request, key, {}, status.HTTP_200_OK, run)


@router.post(
    "/payments/{payment_id}/refunds", response_model=RefundResult, status_code=status.HTTP_201_CREATED
)
async def refund_payment(
    request: Request, payment_id: PaymentId, body: RefundCreate, engine: EngineDep, key: IdempotencyKey
) -> Response:
    """Refund part or all of what is left of the capture; never more, whatever runs concurrently."""

    async def run() -> BaseModel:
        return await service.refund(
            engine,
            request.app.state.processor,
            payment_id,
            amount_cents=body.amount_cents,
            idempotency_key=key,
        )

    return await _once(request, key, body.model_dump(mode="json"), status.HTTP_201_CREATED, run)


@router.get("/payments/{payment_id}", response_model=PaymentRead)
async def get_payment(session: SessionDep, payment_id: PaymentId) -> PaymentRead:
    return await service.get_payment(session, payment_id)


@router.get("/payments", response_model=list[PaymentRead])
async def list_payments(
    session: SessionDep,
    order_id: Annotated[int, Query(ge=1, le=MAX_ID, description="The order whose payments to list")],
    limit: Annotated[int, Query(ge=1, le=100, description="Oldest first")] = 100,
) -> list[PaymentRead]:
    return await service.list_payments(session, order_id, limit)
