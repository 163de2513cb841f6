"""Payments use cases: authorize, capture, void, refund, get_payment, list_payments, resume_stale.

Each money movement is written down *before* the processor is asked (a pending payment, a pending capture
or void, a pending refund), and the processor is asked outside any transaction with a reference that makes
asking again safe. Whoever finds the marker next (the retry with the same key, any request for the same
payment, or the periodic resume_stale) finishes the job with the same reference: a crash between the
processor's answer and our UPDATE is resumed, never repeated.
"""

from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from payments import metrics, repository
from payments.cards import Card
from payments.errors import (
    AuthorizationExpired,
    PaymentNotCapturable,
    PaymentNotFound,
    PaymentNotRefundable,
    PaymentNotVoidable,
    PaymentPending,
    ProcessorUnavailable,
    RefundExceedsCaptured,
)
from payments.processor import PaymentProcessor, ProcessorUnreachable
from payments.schemas import CAPTURED_STATUSES, PaymentRead, RefundResult
from servicekit.db import autocommit
from servicekit.errors import Unavailable
from servicekit.idempotency import IdempotencyKeyInUse, IdempotencyKeyReused

log = structlog.get_logger()

# Rounds of "read, try the conditional UPDATE, read again" before giving up: each lost round means another
# request moved the payment meanwhile, and a payment moves forward only a handful of times in its life.
_ATTEMPTS = 5


def authorization_reference(payment_id: int) -> str:
    return f"payment-{payment_id}"


def _pending(payment_id: int) -> PaymentPending:
    return PaymentPending(
        f"Payment {payment_id}'s authorization is still being decided; retry shortly.",
        headers={"Retry-After": "1"},
        payment_id=payment_id,
    )


def _contended(payment_id: int) -> Unavailable:
    return Unavailable(
        f"Payment {payment_id} is changing under concurrent requests; retry shortly.",
        headers={"Retry-After": "1"},
        payment_id=payment_id,
    )


async def _read(conn: AsyncConnection, payment: dict[str, Any]) -> PaymentRead:
    refunds = await repository.refunds_of(conn, [payment["payment_id"]])
    return PaymentRead.model_validate({**payment, "refunds": refunds})


async def _existing(conn: AsyncConnection, payment_id: int) -> dict[str, Any]:
    payment = await repository.get_payment(conn, payment_id)
    if payment is None:
        raise PaymentNotFound(f"There is no payment {payment_id}.", payment_id=payment_id)
    return payment


def _unreachable(payment_id: int, operation: str, **extra: Any) -> ProcessorUnavailable:
    log.warning("processor_unreachable", payment_id=payment_id, operation=operation, **extra)
    return ProcessorUnavailable(
        f"The card processor did not answer the {operation}; retry with the same Idempotency-Key "
        "(it is resumed, never repeated).",
        headers={"Retry-After": "1"},
        payment_id=payment_id,
        **extra,
    )


# --- authorize -----------------------------------------------------------------------------------------


async def _pending_or_existing_payment(
    conn: AsyncConnection, order_id: int, amount_cents: int, card: Card, key: str
) -> dict[str, Any]:
    for _ in range(_ATTEMPTS):
        # An earlier request with this key may have written the payment and died (or its idempotency key
        # expired): that payment is the answer, resumed if still pending. Never a second payment for one key.
        existing = await repository.get_payment_by_key(conn, key)
        if existing is not None:
            asked = (order_id, amount_cents, card.brand, card.last4)
            if (
                existing["order_id"],
                existing["amount_cents"],
                existing["card_brand"],
                existing["card_last4"],
            ) != asked:
                raise IdempotencyKeyReused(
                    "This Idempotency-Key was already used for another payment; use a new key."
                )
            return existing
        payment = await repository.insert_pending_payment(
            conn,
            order_id=order_id,
            amount_cents=amount_cents,
            card_brand=card.brand,
            card_last4=card.last4,
            key=key,
        )
        if payment is not None:
            return payment
    raise IdempotencyKeyInUse(
        "The Idempotency-Key is contended; retry shortly.", headers={"Retry-After": "1"}
    )


async def authorize(
    engine: AsyncEngine,
    processor: PaymentProcessor,
    *,
    order_id: int,
    amount_cents: int,
    card: Card,
    idempotency_key: str,
    authorization_ttl_h: float,
) -> PaymentRead:
    """Authorize once per key. A decline is an answer too (status ``declined``)."""
    async with autocommit(engine) as conn:
        payment = await _pending_or_existing_payment(conn, order_id, amount_cents, card, idempotency_key)
        payment_id = payment["payment_id"]
        if payment["status"] == "pending":
            try:
                outcome = await processor.authorize(authorization_reference(payment_id), card, amount_cents)
            except ProcessorUnreachable:
                raise _unreachable(payment_id, "authorization") from None
            decided = await repository.decide_authorization(
                conn,
                payment_id,
                authorized=outcome.authorized,
                failure_code=outcome.failure_code,
                ttl_h=authorization_ttl_h,
            )
            if decided is not None:
                payment = decided
                metrics.AUTHORIZATIONS.labels(
                    "authorized" if payment["status"] == "authorized" else payment["failure_code"]
                ).inc()
                log.info(
                    "payment_authorized" if payment["status"] == "authorized" else "payment_declined",
                    payment_id=payment_id,
                    order_id=order_id,
                    amount_cents=amount_cents,
                    card_brand=card.brand,
                    card_last4=card.last4,
                    failure_code=payment["failure_code"],
                )
            else:  # a concurrent resume of the same key recorded the (same) answer first
                payment = await _existing(conn, payment_id)
        return await _read(conn, payment)


# --- capture and void ------------------------------------------------------------------------------------


async def _finish_operation(
    conn: AsyncConnection, processor: PaymentProcessor, payment: dict[str, Any]
) -> dict[str, Any]:
    """Send the payment's pending capture or void to the processor and record it."""
    payment_id, operation = payment["payment_id"], payment["pending_operation"]
    reference = authorization_reference(payment_id)
    try:
        if operation == "capture":
            await processor.capture(reference, payment["amount_cents"])
        else:
            await processor.void(reference)
    except ProcessorUnreachable:
        raise _unreachable(payment_id, operation) from None
    done = await repository.complete_operation(conn, payment_id, operation)
    if done is None:  # another request finishing the same operation recorded it first
        return await _existing(conn, payment_id)
    if operation == "capture":
        metrics.CAPTURES.inc()
        log.info(
            "payment_captured",
            payment_id=payment_id,
            order_id=done["order_id"],
            amount_cents=done["captured_cents"],
        )
    else:
        metrics.VOIDS.inc()
        log.info("payment_voided", payment_id=payment_id, order_id=done["order_id"])
    return done


async def capture(engine: AsyncEngine, processor: PaymentProcessor, payment_id: int) -> PaymentRead:
    """Capture the full authorized amount. Captured already (or refunded since): answered as it is."""
    async with autocommit(engine) as conn:
        for _ in range(_ATTEMPTS):
            payment = await _existing(conn, payment_id)
            if payment["pending_operation"] is not None:
                # A capture or void was decided and may have reached the processor: finish it first.
                payment = await _finish_operation(conn, processor, payment)
            status = payment["status"]
            if status in CAPTURED_STATUSES:
                return await _read(conn, payment)
            if status == "pending":
                raise _pending(payment_id)
            if status in {"declined", "voided"}:
                raise PaymentNotCapturable(
                    f"Payment {payment_id} is {status}: there is nothing to capture.",
                    payment_id=payment_id,
                    payment_status=status,
                )
            if payment["authorization_expired"]:
                raise AuthorizationExpired(
                    f"Payment {payment_id}'s authorization expired at "
                    f"{payment['authorization_expires_at'].isoformat()}; it can only be voided.",
                    payment_id=payment_id,
                )
            claimed = await repository.claim_capture(conn, payment_id)
            if claimed is not None:
                return await _read(conn, await _finish_operation(conn, processor, claimed))
    raise _contended(payment_id)


async def void(engine: AsyncEngine, processor: PaymentProcessor, payment_id: int) -> PaymentRead:
    """Release an authorization (expired or not). Voided already: answered as it is."""
    async with autocommit(engine) as conn:
        for _ in range(_ATTEMPTS):
            payment = await _existing(conn, payment_id)
            if payment["pending_operation"] is not None:
                payment = await _finish_operation(conn, processor, payment)
            status = payment["status"]
            if status == "voided":
                return await _read(conn, payment)
            if status == "pending":
                raise _pending(payment_id)
            if status != "authorized":
                hint = " (refund it instead)" if status in CAPTURED_STATUSES else ""
                raise PaymentNotVoidable(
                    f"Payment {payment_id} is {status}: it cannot be voided{hint}.",
                    payment_id=payment_id,
                    payment_status=status,
                )
            claimed = await repository.claim_void(conn, payment_id)
            if claimed is not None:
                return await _read(conn, await _finish_operation(conn, processor, claimed))
    raise _contended(payment_id)


# --- refund ----------------------------------------------------------------------------------------------


async def _finish_refund(conn: AsyncConnection, processor: PaymentProcessor, refund: dict[str, Any]) -> None:
    refund_id, payment_id = refund["refund_id"], refund["payment_id"]
    try:
        await processor.refund(
            f"refund-{refund_id}", authorization_reference(payment_id), refund["amount_cents"]
        )
    except ProcessorUnreachable:
        raise _unreachable(payment_id, "refund", refund_id=refund_id) from None
    if await repository.complete_refund(conn, refund_id):
        metrics.REFUNDS.inc()
        metrics.REFUNDED_CENTS.inc(refund["amount_cents"])
        log.info(
            "payment_refunded",
            payment_id=payment_id,
            refund_id=refund_id,
            amount_cents=refund["amount_cents"],
        )


async def _reserved_or_existing_refund(
    conn: AsyncConnection, payment_id: int, amount_cents: int, key: str
) -> dict[str, Any]:
    for _ in range(_ATTEMPTS):
        existing = await repository.get_refund_by_key(conn, key)
        if existing is not None:
            if (existing["payment_id"], existing["amount_cents"]) != (payment_id, amount_cents):
                raise IdempotencyKeyReused(
                    "This Idempotency-Key was already used for another refund; use a new key."
                )
            return existing
        try:
            refund = await repository.reserve_refund(conn, payment_id, amount_cents, key)
        except IntegrityError:
            continue  # a request racing this one took the key: its refund is the answer
        if refund is not None:
            return refund
        payment = await _existing(conn, payment_id)
        status = payment["status"]
        if status == "pending":
            raise _pending(payment_id)
        if status not in {"captured", "partially_refunded"}:
            raise PaymentNotRefundable(
                f"Payment {payment_id} is {status}: only captured money can be refunded.",
                payment_id=payment_id,
                payment_status=status,
            )
        refundable = payment["captured_cents"] - payment["refunded_cents"]
        if amount_cents > refundable:
            raise RefundExceedsCaptured(
                f"Payment {payment_id} has {refundable} cents left to refund; {amount_cents} asked.",
                payment_id=payment_id,
                refundable_cents=refundable,
            )
        # Refundable now, though not when the UPDATE ran (a capture landed in between): try again.
    raise _contended(payment_id)


async def refund(
    engine: AsyncEngine,
    processor: PaymentProcessor,
    payment_id: int,
    *,
    amount_cents: int,
    idempotency_key: str,
) -> RefundResult:
    """Refund part or all of what is left of the capture, once per key."""
    async with autocommit(engine) as conn:
        refund = await _reserved_or_existing_refund(conn, payment_id, amount_cents, idempotency_key)
        if refund["status"] == "pending":
            await _finish_refund(conn, processor, refund)
        payment = await _existing(conn, payment_id)
        return RefundResult.model_validate({**refund, "payment": await _read(conn, payment)})


# --- resuming what a dead request left ------------------------------------------------------------------

# Rows looked at per pass: a backlog is worked off over several passes rather than in one long one.
_RESUME_BATCH = 100


async def resume_stale(engine: AsyncEngine, processor: PaymentProcessor, *, older_than_s: float) -> int:
    """Finish captures, voids and refunds whose request died (or gave up on a silent processor) and was
    never retried: the money was promised, so it must move. Safe next to a live request doing the same
    thing, and in every replica at once: the processor reference is the same, and recording is a
    conditional UPDATE. (A pending *authorization* cannot be resumed here: only its retry has the card.)
    Returns how many were finished."""
    finished = 0
    async with autocommit(engine) as conn:
        for payment in await repository.stale_pending_operations(conn, older_than_s, _RESUME_BATCH):
            try:
                await _finish_operation(conn, processor, payment)
            except ProcessorUnavailable:
                continue  # still silent: the next pass tries again
            metrics.RESUMED.labels(payment["pending_operation"]).inc()
            log.warning(
                "payment_operation_resumed",
                payment_id=payment["payment_id"],
                operation=payment["pending_operation"],
            )
            finished += 1
        for refund in await repository.stale_pending_refunds(conn, older_than_s, _RESUME_BATCH):
            try:
                await _finish_refund(conn, processor, refund)
            except ProcessorUnavailable:
                continue
            metrics.RESUMED.labels("refund").inc()
            log.warning(
                "payment_operation_resumed",
                payment_id=refund["payment_id"],
                refund_id=refund["refund_id"],
                operation="refund",
            )
            finished += 1
    return finished


# --- reads -----------------------------------------------------------------------------------------------


async def get_payment(session: AsyncSession, payment_id: int) -> PaymentRead:
    conn = await session.connection()
    return await _read(conn, await _existing(conn, payment_id))


async def list_payments(session: AsyncSession, order_id: int, limit: int) -> list[PaymentRead]:
    conn = await session.connection()
    payments = await repository.list_payments(conn, order_id, limit)
    refunds = await repository.refunds_of(conn, [p["payment_id"] for p in payments])
    by_payment: dict[int, list[dict[str, Any]]] = {}
    for row in refunds:
        by_payment.setdefault(row["payment_id"], []).append(row)
    return [
        PaymentRead.model_validate({**p, "refunds": by_payment.get(p["payment_id"], [])}) for p in payments
    ]
