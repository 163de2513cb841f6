"""The SQL for the orders schema, and the one statement that takes stock."""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from orders.payments import Charge

# ---------------------------------------------------------------------------------------------------------
# The order transaction, for an interviewer.
#
# The promise is "never sell stock we do not have", under any concurrency. The textbook way is
#   BEGIN; SELECT … FROM products WHERE id IN (…) ORDER BY id FOR UPDATE; (check in the app);
#   INSERT order; INSERT items; UPDATE products SET stock_qty = stock_qty - qty; COMMIT;
# which is correct but holds the row locks across five or six client/server round trips. On a hot product
# every buyer queues on that one row, so the lock hold time *is* the throughput.
#
# So the whole transaction is this single statement, sent in one round trip and run as its own implicit
# transaction (autocommit: no BEGIN/COMMIT trips either). Inside it:
#   1. `locked` takes FOR UPDATE row locks on the requested products in ascending id order. Every order
#      locks in the same order, so two orders for overlapping products can queue but never deadlock.
#      Under READ COMMITTED, a row that changed while we waited for its lock is re-read at its newest
#      version, so `stock_qty` here is the committed truth, and nobody else can change it until we commit.
#   2. `lines` pairs each requested line with its locked row (NULL: no such product) and the price now,
#      which is snapshotted into the order line. `verdict` decides all-or-nothing: every product exists
#      and has enough stock; and computes the total, once, here.
#   3. Only if the verdict is yes: insert the order, its lines, and decrement stock. The UPDATE touches only
#      rows we already hold. CHECK (stock_qty >= 0) on the table is the last line of defence.
#   4. It returns the new order, or, when refused, each line's requested and available quantities so the
#      caller can say exactly what was short. Nothing was written; the locks go when the statement ends.
# READ COMMITTED plus explicit row locks is enough here: the only shared state is the locked rows, so
# SERIALIZABLE would add retries without adding safety (`task demo:race` shows the strategies side by side).
# ---------------------------------------------------------------------------------------------------------
PLACE_ORDER = text(
    """
    WITH requested AS (
        SELECT product_id, qty
          FROM unnest(CAST(:product_ids AS bigint[]), CAST(:qtys AS integer[])) AS r (product_id, qty)
    ),
    locked AS MATERIALIZED (
        SELECT p.id, p.price_cents, p.stock_qty
          FROM inventory.products AS p
         WHERE p.id = ANY (CAST(:product_ids AS bigint[]))
         ORDER BY p.id
           FOR UPDATE
    ),
    lines AS MATERIALIZED (
        SELECT r.product_id, r.qty, l.price_cents, l.stock_qty AS available
          FROM requested AS r LEFT JOIN locked AS l ON l.id = r.product_id
    ),
    verdict AS MATERIALIZED (
        SELECT bool_and(available IS NOT NULL AND available >= qty) AS ok,
               CAST(sum(qty * price_cents) AS bigint) AS total_cents,
               -- every lock is held by now: the time since the statement began is (almost all) lock wait
               EXTRACT(epoch FROM clock_timestamp() - statement_timestamp()) AS lock_wait_s
          FROM lines
    ),
    new_order AS (
        INSERT INTO orders.orders (status, total_cents, idempotency_key)
        SELECT 'PENDING', total_cents, CAST(:idempotency_key AS text) FROM verdict WHERE ok
        RETURNING id, status, total_cents
    ),
    new_items AS (
        INSERT INTO orders.order_items (order_id, product_id, qty, price_cents)
        SELECT o.id, l.product_id, l.qty, l.price_cents FROM new_order AS o CROSS JOIN lines AS l
    ),
    taken AS (
        UPDATE inventory.products AS p
           SET stock_qty = p.stock_qty - l.qty
          FROM lines AS l
         WHERE p.id = l.product_id AND (SELECT ok FROM verdict)
    )
    SELECT o.id AS order_id, o.status, o.total_cents,
           CASE WHEN o.id IS NULL THEN
               (SELECT json_agg(json_build_object('product_id', product_id, 'requested', qty,
                                                  'available', available))
                  FROM lines)
           END AS refused_lines,
           CAST(verdict.lock_wait_s AS float8) AS lock_wait_s
      FROM verdict LEFT JOIN new_order AS o ON true
    """
)

# Cancelling gives stock back exactly once: the conditional UPDATE moves the order out of a cancellable
# state, and only the statement that did so restocks. A concurrent cancel waits on the order row, then
# re-checks the status, finds CANCELLED and restocks nothing. Products are locked in id order, as above.
CANCEL_ORDER = text(
    """
    WITH cancelled AS (
        UPDATE orders.orders SET status = 'CANCELLED', updated_at = now()
         WHERE id = :order_id AND status IN ('PENDING', 'PAYMENT_FAILED')
        RETURNING id
    ),
    items AS MATERIALIZED (
        SELECT i.product_id, i.qty FROM orders.order_items AS i JOIN cancelled AS c ON c.id = i.order_id
    ),
    locked AS MATERIALIZED (
        SELECT p.id FROM inventory.products AS p
         WHERE p.id IN (SELECT product_id FROM items)
         ORDER BY p.id
           FOR UPDATE
    ),
    restocked AS (
        UPDATE inventory.products AS p
           SET stock_qty = p.stock_qty + i.qty
          FROM items AS i JOIN locked AS l ON l.id = i.product_id
         WHERE p.id = i.product_id
        RETURNING p.id
    )
    SELECT (SELECT id FROM cancelled) AS cancelled_id, (SELECT count(*) FROM restocked) AS restocked
    """
)

ORDER_COLUMNS = """
    o.id, o.status, o.total_cents, o.payment_attempts, o.charge_id, o.payment_failure_code,
    o.created_at, o.updated_at,
    COALESCE((SELECT json_agg(json_build_object('product_id', i.product_id, 'qty', i.qty,
                                                'price_cents', i.price_cents) ORDER BY i.product_id)
                FROM orders.order_items AS i WHERE i.order_id = o.id), '[]') AS items
"""


@dataclass(frozen=True)
class PlaceOrderResult:
    order_id: int | None
    status: str | None
    total_cents: int | None
    refused_lines: list[dict[str, Any]]
    lock_wait_s: float = 0.0


async def place_order(
    conn: AsyncConnection, lines: Sequence[tuple[int, int]], idempotency_key: str | None
) -> PlaceOrderResult:
    """``lines``: (product_id, qty) pairs, product ids distinct and ascending."""
    row = (
        await conn.execute(
            PLACE_ORDER,
            {
                "product_ids": [product_id for product_id, _ in lines],
                "qtys": [qty for _, qty in lines],
                "idempotency_key": idempotency_key,
            },
        )
    ).one()
    refused = row.refused_lines
    return PlaceOrderResult(
        order_id=row.order_id,
        status=row.status,
        total_cents=row.total_cents,
        refused_lines=json.loads(refused) if isinstance(refused, str) else (refused or []),
        lock_wait_s=float(row.lock_wait_s or 0.0),
    )


async def cancel_order(conn: AsyncConnection, order_id: int) -> bool:
    """True if this call moved the order to CANCELLED (and restocked it)."""
    row = (await conn.execute(CANCEL_ORDER, {"order_id": order_id})).one()
    return row.cancelled_id is not None


def _decode(row: Any) -> dict[str, Any]:
    data = dict(row._mapping)
    if isinstance(data["items"], str):
        data["items"] = json.loads(data["items"])
    return data


async def get_order(session: AsyncSession | AsyncConnection, order_id: int) -> dict[str, Any] | None:
    row = (
        await session.execute(
            text(f"SELECT {ORDER_COLUMNS} FROM orders.orders AS o WHERE o.id = :id"), {"id": order_id}
        )
    ).first()
    return _decode(row) if row is not None else None


async def get_order_by_idempotency_key(conn: AsyncConnection, key: str) -> dict[str, Any] | None:
    row = (
        await conn.execute(
            text(f"SELECT {ORDER_COLUMNS} FROM orders.orders AS o WHERE o.idempotency_key = :key"),
            {"key": key},
        )
    ).first()
    return _decode(row) if row is not None else None


async def list_orders(
    session: AsyncSession, *, status: str | None, before: int | None, limit: int
) -> list[dict[str, Any]]:
    """Newest first; keyset paging on id (pass the last id seen as ``before``)."""
    rows = (
        await session.execute(
            text(
                f"""
                SELECT {ORDER_COLUMNS} FROM orders.orders AS o
                 WHERE (CAST(:status AS text) IS NULL OR o.status = :status)
                   AND (CAST(:before AS bigint) IS NULL OR o.id < :before)
                 ORDER BY o.id DESC
                 LIMIT :limit
                """
            ),
            {"status": status, "before": before, "limit": limit},
        )
    ).all()
    return [_decode(row) for row in rows]


# Capture moves the order only from a capturable state, so whichever of several concurrent captures (or a
# concurrent cancel) comes second changes nothing and reads the winner's outcome. A decline also checks the
# attempt number, so one declined attempt counts once however many requests saw it.
MARK_PAID = text(
    """
    UPDATE orders.orders
       SET status = 'PAID', charge_id = :charge_id, payment_failure_code = NULL, updated_at = now()
     WHERE id = :order_id AND status IN ('PENDING', 'PAYMENT_FAILED')
    RETURNING id
    """
)
MARK_PAYMENT_FAILED = text(
    """
    UPDATE orders.orders
       SET status = 'PAYMENT_FAILED', payment_attempts = :attempt, payment_failure_code = :failure_code,
           charge_id = NULL, updated_at = now()
     WHERE id = :order_id AND status IN ('PENDING', 'PAYMENT_FAILED') AND payment_attempts = :attempt - 1
    RETURNING id
    """
)
# An order cancelled while its charge succeeded keeps the charge id, so the charge can be traced and refunded.
RECORD_CHARGE_ON_CANCELLED = text(
    """
    UPDATE orders.orders SET charge_id = :charge_id, updated_at = now()
     WHERE id = :order_id AND status = 'CANCELLED' AND charge_id IS NULL
    """
)


async def record_capture_outcome(
    conn: AsyncConnection, order_id: int, attempt: int, charge: Charge | None
) -> bool:
    """Move the order by the charge's outcome (no charge: a free order, paid as it is). True if it moved."""
    if charge is None or charge.succeeded:
        paid = {"order_id": order_id, "charge_id": charge.charge_id if charge else None}
        return (await conn.execute(MARK_PAID, paid)).first() is not None
    failed = {"order_id": order_id, "attempt": attempt, "failure_code": charge.failure_code or "declined"}
    return (await conn.execute(MARK_PAYMENT_FAILED, failed)).first() is not None


async def record_charge_on_cancelled(conn: AsyncConnection, order_id: int, charge_id: int | None) -> None:
    await conn.execute(RECORD_CHARGE_ON_CANCELLED, {"order_id": order_id, "charge_id": charge_id})
