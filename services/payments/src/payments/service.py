"""Payments use cases: create_charge, get_charge, list_charges."""

from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from payments import metrics, repository
from payments.errors import ChargeInProgress, ChargeNotFound, OrderAlreadyCharged
from payments.processor import PaymentProcessor
from payments.schemas import ChargeCreate, ChargeRead, ChargeResult
from servicekit.idempotency import IdempotencyKeyReused

log = structlog.get_logger()


async def _pending_or_existing_charge(engine: AsyncEngine, body: ChargeCreate, key: str) -> dict[str, Any]:
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        for _ in range(3):
            # An earlier request with this key may have written the charge and died (or its key expired):
            # that charge is the answer, resumed if it is still pending. Never a second charge for one key.
            existing = await repository.get_charge_by_key(conn, key)
            if existing is not None:
                if (existing["order_id"], existing["amount_cents"]) != (body.order_id, body.amount_cents):
                    raise IdempotencyKeyReused(
                        "This Idempotency-Key was already used for another charge; use a new key."
                    )
                return existing
            charge = await repository.insert_pending_charge(conn, body.order_id, body.amount_cents, key)
            if charge is not None:
                return charge
            live = await repository.get_live_charge(conn, body.order_id)
            if live is None:
                continue  # the live charge was declined in between: try again
            if live["status"] == "succeeded":
                raise OrderAlreadyCharged(
                    f"Order {body.order_id} is already paid by charge {live['charge_id']}.",
                    order_id=body.order_id,
                    charge_id=live["charge_id"],
                )
            raise ChargeInProgress(
                f"Order {body.order_id} is being charged by another request; retry shortly.",
                headers={"Retry-After": "1"},
                order_id=body.order_id,
            )
    raise ChargeInProgress("The order's charges are contended; retry shortly.", headers={"Retry-After": "1"})


async def create_charge(
    engine: AsyncEngine, processor: PaymentProcessor, body: ChargeCreate, *, idempotency_key: str
) -> ChargeResult:
    """Charge once per key. The charge row is written (pending) before the processor is asked, and the
    processor is asked outside any transaction, with a reference that makes asking again safe."""
    charge = await _pending_or_existing_charge(engine, body, idempotency_key)
    if charge["status"] == "pending":
        outcome = await processor.charge(f"charge-{charge['charge_id']}", body.amount_cents)
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            charge = await repository.decide_charge(
                conn, charge["charge_id"], succeeded=outcome.succeeded, failure_code=outcome.failure_code
            )
        outcome_label = (
            "succeeded" if charge["status"] == "succeeded" else (charge["failure_code"] or "declined")
        )
        metrics.CHARGES.labels(outcome_label).inc()
        log.info(
            "charge_decided",
            charge_id=charge["charge_id"],
            order_id=body.order_id,
            amount_cents=body.amount_cents,
            status=charge["status"],
            failure_code=charge["failure_code"],
        )
    return ChargeResult.model_validate(charge)


async def get_charge(session: AsyncSession, charge_id: int) -> ChargeRead:
    conn = await session.connection()
    charge = await repository.get_charge(conn, charge_id)
    if charge is None:
        raise ChargeNotFound(f"There is no charge {charge_id}.", charge_id=charge_id)
    return ChargeRead.model_validate(charge)


async def list_charges(session: AsyncSession, order_id: int, limit: int) -> list[ChargeRead]:
    conn = await session.connection()
    return [ChargeRead.model_validate(row) for row in await repository.list_charges(conn, order_id, limit)]
