"""The SQL for the payments schema. Every statement runs on its own (autocommit): no transaction is ever
held open while the processor is being asked.

Every transition is one conditional UPDATE whose WHERE clause is the state it starts from, so of two racing
transitions exactly one moves the row (the other gets no row back and reads the winner's outcome). The money
invariant, amount >= captured >= refunded >= 0, is also a CHECK on the row (migration 0004)."""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

PAYMENT_COLUMNS = """
    id AS payment_id, order_id, amount_cents, captured_cents, refunded_cents, status, failure_code,
    card_brand, card_last4, authorization_expires_at, pending_operation, idempotency_key, created_at,
    updated_at, coalesce(authorization_expires_at <= now(), false) AS authorization_expired
"""
REFUND_COLUMNS = "id AS refund_id, payment_id, amount_cents, status, idempotency_key, created_at"


def _row(result: Any) -> dict[str, Any] | None:
    row = result.first()
    return dict(row._mapping) if row is not None else None


async def get_payment(conn: AsyncConnection, payment_id: int) -> dict[str, Any] | None:
    return _row(
        await conn.execute(
            text(f"SELECT {PAYMENT_COLUMNS} FROM payments.payments WHERE id = :id"), {"id": payment_id}
        )
    )


async def get_payment_by_key(conn: AsyncConnection, key: str) -> dict[str, Any] | None:
    return _row(
        await conn.execute(
            text(f"SELECT {PAYMENT_COLUMNS} FROM payments.payments WHERE idempotency_key = :key"),
            {"key": key},
        )
    )


async def list_payments(conn: AsyncConnection, order_id: int, limit: int) -> list[dict[str, Any]]:
    rows = await conn.execute(
        text(
            f"SELECT {PAYMENT_COLUMNS} FROM payments.payments"
            " WHERE order_id = :order_id ORDER BY id LIMIT :limit"
        ),
        {"order_id": order_id, "limit": limit},
    )
    return [dict(row._mapping) for row in rows]


async def refunds_of(conn: AsyncConnection, payment_ids: Sequence[int]) -> list[dict[str, Any]]:
    if not payment_ids:
        return []
    rows = await conn.execute(
        text(f"SELECT {REFUND_COLUMNS} FROM payments.refunds WHERE payment_id = ANY(:ids) ORDER BY id"),
        {"ids": list(payment_ids)},
    )
    return [dict(row._mapping) for row in rows]


async def insert_pending_payment(
    conn: AsyncConnection, *, order_id: int, amount_cents: int, card_brand: str, card_last4: str, key: str
) -> dict[str, Any] | None:
    """None when the key is taken (by a request racing this one, or an earlier one whose key expired)."""
    return _row(
        await conn.execute(
            text(
                f"""
                INSERT INTO payments.payments
                       (order_id, amount_cents, card_brand, card_last4, idempotency_key)
                VALUES (:order_id, :amount_cents, :card_brand, :card_last4, :key)
                ON CONFLICT (idempotency_key) DO NOTHING
                RETURNING {PAYMENT_COLUMNS}
                """
            ),
            {
                "order_id": order_id,
                "amount_cents": amount_cents,
                "card_brand": card_brand,
                "card_last4": card_last4,
                "key": key,
            },
        )
    )


async def decide_authorization(
    conn: AsyncConnection, payment_id: int, *, authorized: bool, failure_code: str | None, ttl_h: float
) -> dict[str, Any] | None:
    """pending → authorized (with its expiry) or declined; None when it was decided already."""
    return _row(
        await conn.execute(
            text(
                f"""
                UPDATE payments.payments
                   SET status = :status, failure_code = :failure_code, updated_at = now(),
                       authorization_expires_at = CASE WHEN :authorized
                           THEN now() + make_interval(secs => :ttl_s) END
                 WHERE id = :id AND status = 'pending'
                RETURNING {PAYMENT_COLUMNS}
                """
            ),
            {
                "id": payment_id,
                "authorized": authorized,
                "status": "authorized" if authorized else "declined",
                "failure_code": None if authorized else (failure_code or "card_declined"),
                "ttl_s": ttl_h * 3600,
            },
        )
    )


async def claim_capture(conn: AsyncConnection, payment_id: int) -> dict[str, Any] | None:
    """Mark a live, unexpired authorization as being captured; None when it is not (any more) one."""
    return _row(
        await conn.execute(
            text(
                f"""
                UPDATE payments.payments SET pending_operation = 'capture', updated_at = now()
                 WHERE id = :id AND status = 'authorized' AND pending_operation IS NULL
                   AND authorization_expires_at > now()
                RETURNING {PAYMENT_COLUMNS}
                """
            ),
            {"id": payment_id},
        )
    )


async def claim_void(conn: AsyncConnection, payment_id: int) -> dict[str, Any] | None:
    """Mark an authorization (expired or not) as being voided; None when it is not (any more) one."""
    return _row(
        await conn.execute(
            text(
                f"""
                UPDATE payments.payments SET pending_operation = 'void', updated_at = now()
                 WHERE id = :id AND status = 'authorized' AND pending_operation IS NULL
                RETURNING {PAYMENT_COLUMNS}
                """
            ),
            {"id": payment_id},
        )
    )


async def complete_operation(conn: AsyncConnection, payment_id: int, operation: str) -> dict[str, Any] | None:
    """Record that the processor did the pending capture (the full authorized amount) or void; None when
    another request recorded it first."""
    return _row(
        await conn.execute(
            text(
                f"""
                UPDATE payments.payments
                   SET status = CASE :operation WHEN 'capture' THEN 'captured' ELSE 'voided' END,
                       captured_cents = CASE :operation WHEN 'capture' THEN amount_cents ELSE 0 END,
                       pending_operation = NULL, updated_at = now()
                 WHERE id = :id AND status = 'authorized' AND pending_operation = :operation
                RETURNING {PAYMENT_COLUMNS}
                """
            ),
            {"id": payment_id, "operation": operation},
        )
    )


async def get_refund_by_key(conn: AsyncConnection, key: str) -> dict[str, Any] | None:
    return _row(
        await conn.execute(
            text(f"SELECT {REFUND_COLUMNS} FROM payments.refunds WHERE idempotency_key = :key"), {"key": key}
        )
    )


async def reserve_refund(
    conn: AsyncConnection, payment_id: int, amount_cents: int, key: str
) -> dict[str, Any] | None:
    """Count the refund against the payment and write it pending, in one statement; None when the payment
    is not refundable or ``amount_cents`` is more than is left. The condition
    ``refunded_cents + amount <= captured_cents`` is checked on the row under its lock, so concurrent
    refunds can never together exceed the capture. A taken key raises IntegrityError and changes nothing."""
    return _row(
        await conn.execute(
            text(
                f"""
                WITH reserved AS (
                    UPDATE payments.payments
                       SET refunded_cents = refunded_cents + :amount,
                           status = CASE WHEN refunded_cents + :amount = captured_cents
                                         THEN 'refunded' ELSE 'partially_refunded' END,
                           updated_at = now()
                     WHERE id = :payment_id AND status IN ('captured', 'partially_refunded')
                       AND refunded_cents + :amount <= captured_cents
                    RETURNING id
                )
                INSERT INTO payments.refunds (payment_id, amount_cents, idempotency_key)
                SELECT id, :amount, :key FROM reserved
                RETURNING {REFUND_COLUMNS}
                """
            ),
            {"payment_id": payment_id, "amount": amount_cents, "key": key},
        )
    )


async def complete_refund(conn: AsyncConnection, refund_id: int) -> bool:
    """Record that the processor made the refund; False when another request recorded it first."""
    done = await conn.execute(
        text(
            "UPDATE payments.refunds SET status = 'succeeded', succeeded_at = now()"
            " WHERE id = :id AND status = 'pending' RETURNING id"
        ),
        {"id": refund_id},
    )
    return done.first() is not None


async def stale_pending_operations(
    conn: AsyncConnection, older_than_s: float, limit: int
) -> list[dict[str, Any]]:
    """Captures and voids decided more than ``older_than_s`` ago and still not recorded as done."""
    rows = await conn.execute(
        text(
            f"""
            SELECT {PAYMENT_COLUMNS} FROM payments.payments
             WHERE pending_operation IS NOT NULL AND updated_at < now() - make_interval(secs => :older)
             ORDER BY updated_at LIMIT :limit
            """
        ),
        {"older": older_than_s, "limit": limit},
    )
    return [dict(row._mapping) for row in rows]


async def stale_pending_refunds(
    conn: AsyncConnection, older_than_s: float, limit: int
) -> list[dict[str, Any]]:
    """Refunds reserved more than ``older_than_s`` ago and still not recorded as made."""
    rows = await conn.execute(
        text(
            f"""
            SELECT {REFUND_COLUMNS} FROM payments.refunds
             WHERE status = 'pending' AND created_at < now() - make_interval(secs => :older)
             ORDER BY created_at LIMIT :limit
            """
        ),
        {"older": older_than_s, "limit": limit},
    )
    return [dict(row._mapping) for row in rows]
