"""The SQL for the payments schema. Every statement runs on its own (autocommit): no transaction is ever
held open while the processor is being asked."""

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

CHARGE_COLUMNS = "id AS charge_id, order_id, amount_cents, status, failure_code, created_at, idempotency_key"


def _row(result: Any) -> dict[str, Any] | None:
    row = result.first()
    return dict(row._mapping) if row is not None else None


async def get_charge(conn: AsyncConnection, charge_id: int) -> dict[str, Any] | None:
    return _row(
        await conn.execute(
            text(f"SELECT {CHARGE_COLUMNS} FROM payments.charges WHERE id = :id"), {"id": charge_id}
        )
    )


async def get_charge_by_key(conn: AsyncConnection, key: str) -> dict[str, Any] | None:
    return _row(
        await conn.execute(
            text(f"SELECT {CHARGE_COLUMNS} FROM payments.charges WHERE idempotency_key = :key"), {"key": key}
        )
    )


async def get_live_charge(conn: AsyncConnection, order_id: int) -> dict[str, Any] | None:
    """The order's charge that is pending or succeeded (there is at most one: charges_one_live_per_order)."""
    return _row(
        await conn.execute(
            text(
                f"""
                SELECT {CHARGE_COLUMNS} FROM payments.charges
                 WHERE order_id = :order_id AND status IN ('pending', 'succeeded')
                """
            ),
            {"order_id": order_id},
        )
    )


async def insert_pending_charge(
    conn: AsyncConnection, order_id: int, amount_cents: int, key: str
) -> dict[str, Any] | None:
    """None when the order already has a live charge (or, in a race, the key is taken)."""
    return _row(
        await conn.execute(
            text(
                f"""
                INSERT INTO payments.charges (order_id, amount_cents, idempotency_key)
                VALUES (:order_id, :amount_cents, :key)
                ON CONFLICT DO NOTHING
                RETURNING {CHARGE_COLUMNS}
                """
            ),
            {"order_id": order_id, "amount_cents": amount_cents, "key": key},
        )
    )


async def decide_charge(
    conn: AsyncConnection, charge_id: int, *, succeeded: bool, failure_code: str | None
) -> dict[str, Any]:
    """Record the processor's outcome once; a charge already decided keeps its first outcome."""
    decided = _row(
        await conn.execute(
            text(
                f"""
                UPDATE payments.charges
                   SET status = :status, failure_code = :failure_code, decided_at = now()
                 WHERE id = :id AND status = 'pending'
                RETURNING {CHARGE_COLUMNS}
                """
            ),
            {
                "id": charge_id,
                "status": "succeeded" if succeeded else "failed",
                "failure_code": None if succeeded else failure_code,
            },
        )
    )
    if decided is not None:
        return decided
    existing = await get_charge(conn, charge_id)
    assert existing is not None  # charges are never deleted
    return existing


async def list_charges(conn: AsyncConnection, order_id: int, limit: int) -> list[dict[str, Any]]:
    rows = await conn.execute(
        text(
            f"SELECT {CHARGE_COLUMNS} FROM payments.charges"
            " WHERE order_id = :order_id ORDER BY id LIMIT :limit"
        ),
        {"order_id": order_id, "limit": limit},
    )
    return [dict(row._mapping) for row in rows]
