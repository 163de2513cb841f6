from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, status
from pydantic import BaseModel
from starlette.responses import JSONResponse, Response

from payments import service
from payments.cards import parse_card
from payments.processor import PaymentProcessor
from payments.schemas import NoBody, PaymentCreate, PaymentRead, RefundCreate, RefundResult
from payments.settings import PaymentsSettings
from servicekit.callers import allow
from servicekit.db import EngineDep, SessionDep
from servicekit.errors import PROBLEM_RESPONSES
from servicekit.idempotency import IdempotentRequest
from servicekit.validation import MAX_ID, JsonBody

# Who may call (servicekit.callers): orders moves money; the gateway and orders read payments.
CALLERS = allow(reads=["gateway", "orders"], writes=["orders"])
router = APIRouter(tags=["payments"], responses=PROBLEM_RESPONSES, dependencies=[JsonBody])

PaymentId = Annotated[int, Path(ge=1, le=MAX_ID, description="The payment's id")]


async def _processor(request: Request) -> PaymentProcessor:
    # Read per request, not captured at start: tests and the demo swap it to misbehave on purpose.
    processor: PaymentProcessor = request.app.state.processor
    return processor


async def _settings(request: Request) -> PaymentsSettings:
    settings: PaymentsSettings = request.app.state.settings
    return settings


ProcessorDep = Annotated[PaymentProcessor, Depends(_processor)]
SettingsDep = Annotated[PaymentsSettings, Depends(_settings)]


def _answer(result: BaseModel, status_code: int) -> Response:
    return JSONResponse(result.model_dump(mode="json"), status_code=status_code)


@router.post("/payments", response_model=PaymentRead, status_code=status.HTTP_201_CREATED)
async def authorize_payment(
    body: PaymentCreate,
    engine: EngineDep,
    processor: ProcessorDep,
    settings: SettingsDep,
    idempotent: IdempotentRequest,
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

    async def run() -> Response:
        payment = await service.authorize(
            engine,
            processor,
            order_id=body.order_id,
            amount_cents=body.amount_cents,
            card=card,
            idempotency_key=idempotent.required_key,
            authorization_ttl_h=settings.authorization_ttl_h,
        )
        return _answer(payment, status.HTTP_201_CREATED)

    return await idempotent.run(fingerprint_payload, run)


@router.post("/payments/{payment_id}/capture", response_model=PaymentRead)
async def capture_payment(
    payment_id: PaymentId,
    engine: EngineDep,
    processor: ProcessorDep,
    idempotent: IdempotentRequest,
    _body: NoBody | None = None,
) -> Response:
    """Capture the full authorized amount. Captured (or refunded) already: 200 as it is."""

    async def run() -> Response:
        return _answer(await service.capture(engine, processor, payment_id), status.HTTP_200_OK)

    return await idempotent.run({}, run)


@router.post("/payments/{payment_id}/void", response_model=PaymentRead)
async def void_payment(
    payment_id: PaymentId,
    engine: EngineDep,
    processor: ProcessorDep,
    idempotent: IdempotentRequest,
    _body: NoBody | None = None,
) -> Response:
    """Release the authorization without taking money (also once it expired). Voided already: 200 as it is."""

    async def run() -> Response:
        return _answer(await service.void(engine, processor, payment_id), status.HTTP_200_OK)

    return await idempotent.run({}, run)


@router.post(
    "/payments/{payment_id}/refunds", response_model=RefundResult, status_code=status.HTTP_201_CREATED
)
async def refund_payment(
    payment_id: PaymentId,
    body: RefundCreate,
    engine: EngineDep,
    processor: ProcessorDep,
    idempotent: IdempotentRequest,
) -> Response:
    """Refund part or all of what is left of the capture; never more, whatever runs concurrently."""

    async def run() -> Response:
        refund = await service.refund(
            engine,
            processor,
            payment_id,
            amount_cents=body.amount_cents,
            idempotency_key=idempotent.required_key,
        )
        return _answer(refund, status.HTTP_201_CREATED)

    return await idempotent.run(body.model_dump(mode="json"), run)


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
