"""The SQL for the orders schema, and the one statement that takes stock."""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

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
#      Only here: every other mention of inventory.products in the statement reads the statement's
#      snapshot, taken before the lock wait (see 3).
#   2. `lines` pairs each requested line with its locked row (NULL: no such product) and the price now,
#      which is snapshotted into the order line. `verdict` decides all-or-nothing: every product exists
#      and has enough stock; and computes the total, once, here.
#   3. Only if the verdict is yes: insert the order, its lines, and decrement stock. The UPDATE touches only
#      rows we already hold, and it writes the locked stock minus the line (`l.available - l.qty`), the very
#      number the verdict approved, never `p.stock_qty - l.qty`: its own scan finds p in the snapshot, and
#      PostgreSQL checks the new row it built from that stale version *before* it notices the concurrent
#      update and re-evaluates on the newest version (EvalPlanQual). An order that waited on a cancel's
#      restock (snapshot 0, locked 1) was refused by the CHECK with -1 though the unit was there (ADR 0001).
#      CHECK (stock_qty >= 0) on the table is the last line of defence.
#   4. Only if the order was made: its order.placed event goes into outbox.events (issue 14), so the event
#      exists if and only if the order does; a refusal writes none. A product this order takes from above
#      its low-stock threshold to at or below it also writes stock.low: the stock read under the lock is the
#      stock before, so of any number of orders queued on the row exactly one sees "above, then at or
#      below", and the crossing is written once. (Orders' stock moves write no product.changed: that is
#      inventory's event for its own edits.)
#   5. It returns the new order, or, when refused, each line's requested and available quantities so the
#      caller can say exactly what was short. Nothing was written; the locks go when the statement ends.
# The order row also gets its reservation deadline (`expires_at`, after which the sweeper gives the stock
# back), the customer snapshot, and, with an Idempotency-Key, the key *and the claim's created_at*: the key
# row is claimed before this statement runs, so reading its created_at costs no round trip, and the pair
# (key, claim) is unique. A retry of the same claim collides and finds its order; a new claim of the key
# after its TTL is a new request and makes a new order, never another request's.
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
        SELECT p.id, p.price_cents, p.stock_qty, p.name, p.low_stock_threshold
          FROM inventory.products AS p
         WHERE p.id = ANY (CAST(:product_ids AS bigint[]))
         ORDER BY p.id
           FOR UPDATE
    ),
    lines AS MATERIALIZED (
        SELECT r.product_id, r.qty, l.price_cents, l.stock_qty AS available, l.name,
               l.low_stock_threshold AS threshold
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
        INSERT INTO orders.orders
               (status, total_cents, idempotency_key, idempotency_claimed_at, expires_at, customer)
        SELECT 'PENDING', total_cents, CAST(:idempotency_key AS text),
               (SELECT k.created_at FROM orders.idempotency_keys AS k
                 WHERE k.key = CAST(:idempotency_key AS text)),
               now() + make_interval(secs => CAST(:reservation_s AS float8)),
               CAST(CAST(:customer AS text) AS jsonb)
          FROM verdict WHERE ok
        RETURNING id, status, total_cents, expires_at, customer
    ),
    new_items AS (
        INSERT INTO orders.order_items (order_id, product_id, qty, price_cents)
        SELECT o.id, l.product_id, l.qty, l.price_cents FROM new_order AS o CROSS JOIN lines AS l
    ),
    taken AS (
        -- From the locked row, never from p (the snapshot's version): step 3 above.
        UPDATE inventory.products AS p
           SET stock_qty = l.available - l.qty
          FROM lines AS l
         WHERE p.id = l.product_id AND (SELECT ok FROM verdict)
    ),
    placed AS (
        INSERT INTO outbox.events (type, aggregate, aggregate_id, data)
        SELECT 'order.placed', 'order', o.id,
               jsonb_build_object(
                   'order_id', o.id, 'total_cents', o.total_cents,
                   'items', (SELECT jsonb_agg(jsonb_build_object('product_id', l.product_id, 'qty', l.qty,
                                                                 'price_cents', l.price_cents, 'name', l.name)
                                              ORDER BY l.product_id)
                               FROM lines AS l),
                   'customer', o.customer, 'expires_at', o.expires_at)
          FROM new_order AS o
    ),
    stock_low AS (
        INSERT INTO outbox.events (type, aggregate, aggregate_id, data)
        SELECT 'stock.low', 'product', l.product_id,
               jsonb_build_object('product_id', l.product_id, 'name', l.name,
                                  'stock_qty', l.available - l.qty, 'threshold', l.threshold)
          FROM lines AS l
         WHERE (SELECT ok FROM verdict)
           AND l.available > l.threshold AND l.available - l.qty <= l.threshold
         ORDER BY l.product_id
    )
    SELECT o.id AS order_id, o.status, o.total_cents, o.expires_at,
           CASE WHEN o.id IS NULL THEN
               (SELECT json_agg(json_build_object('product_id', product_id, 'requested', qty,
                                                  'available', available))
                  FROM lines)
           END AS refused_lines,
           CAST(verdict.lock_wait_s AS float8) AS lock_wait_s
      FROM verdict LEFT JOIN new_order AS o ON true
    """
)


# ---------------------------------------------------------------------------------------------------------
# Group commit, for an interviewer (ORDERS_PLACEMENT=batched, the default; see orders.batcher).
#
# PLACE_ORDER makes one order per lock hold and one commit per order. On one hot product that is the
# ceiling whatever the hardware: every buyer queues on one row lock, and each hold costs a statement, a WAL
# flush and a round trip. Databases get past it the way they get past fsync: group commit. PolarDB's hot-row
# "group update" and TigerBeetle's batches of transfers do it inside the engine; here it is one layer up.
#
# While one batch is in the database, the orders that arrive gather behind it; when it returns, they go as
# the next batch (at most ORDERS_PLACEMENT_MAX_BATCH), in one statement and one commit. Nobody waits on a
# timer: when the database is idle the first order goes at once, alone, as PLACE_ORDER itself. Under load
# the batch grows by itself to what arrived during one statement, so the lock is held once for many orders.
#
# orders.place_orders() (migration 0007) is that statement. Inside it:
#   1. the union of the batch's products is locked FOR UPDATE once, in ascending id order: the same order
#      as PLACE_ORDER, the restocks and every other batch, so any mix of them, from any number of orders
#      processes, can queue but never deadlock;
#   2. each order is decided on its own, all or nothing, in arrival order, against the stock the earlier
#      orders of the same batch left: who arrived first gets the last units, and a refusal names the
#      requested and available quantities exactly as that order saw them;
#   3. accepted orders and their lines are inserted, and each product's stock is decremented once by the sum
#      the batch took (one row version per hot product per batch, not per order);
#   4. one row per order comes back, in arrival order: its id, or its refusal, or (an idempotency claim that
#      already made its order, say the same claim twice in one batch) that earlier order, marked replayed.
# All or nothing holds per order *and* per batch: if the statement fails, nothing of it was written. The
# only error one order can cause is a unique violation of its idempotency claim (a race the in-statement
# check cannot see); then every order of the batch is decided again alone with PLACE_ORDER, so one order's
# collision never fails the others. Each order keeps its metrics, log line and idempotent response.
# ---------------------------------------------------------------------------------------------------------
PLACE_ORDERS = text(
    """
    SELECT order_index, order_id, status, total_cents, expires_at, refused_lines, replayed, lock_wait_s
      FROM orders.place_orders(CAST(:line_counts AS integer[]), CAST(:product_ids AS bigint[]),
                               CAST(:qtys AS integer[]), CAST(:idempotency_keys AS text[]),
                               CAST(:customers AS text[]), CAST(:reservation_s AS float8))
    """
)


# Events (issue 14, docs/events.md). Each transition below writes its event into outbox.events from the CTE
# that moved the order, in the same statement: a conditional UPDATE that moved nothing writes nothing, so of
# two racing transitions only the winner's event exists. ``_order_data(alias)`` is the data every order event
# carries, built from the moved row (columns id, total_cents, customer) and the order's lines, so no consumer
# has to read orders. Producers may only insert events: no RETURNING from outbox.events.
def _order_data(alias: str) -> str:
    return f"""jsonb_build_object(
        'order_id', {alias}.id, 'total_cents', {alias}.total_cents, 'customer', {alias}.customer,
        'items', COALESCE((SELECT jsonb_agg(jsonb_build_object('product_id', i.product_id, 'qty', i.qty,
                                                               'price_cents', i.price_cents, 'name', p.name)
                                            ORDER BY i.product_id)
                             FROM orders.order_items AS i JOIN inventory.products AS p ON p.id = i.product_id
                            WHERE i.order_id = {alias}.id), '[]'))"""


# The statement that moved an order to CANCELLED or EXPIRED is the only one that restocks it, so stock comes
# back exactly once: a concurrent cancel waits on the order row, re-checks the status, finds it moved and
# restocks nothing. Products are locked in id order, as above, and each product's units are summed first
# (an UPDATE … FROM applies one matching row per target row, so two orders' lines for one product would
# otherwise restock once). A product the restock takes from at or below its low-stock threshold to above it
# writes stock.restored (the stock read under the lock is the stock before, as in PLACE_ORDER).
_RESTOCK = """
    items AS MATERIALIZED (
        SELECT i.product_id, CAST(sum(i.qty) AS integer) AS qty
          FROM orders.order_items AS i JOIN moved AS m ON m.id = i.order_id
         GROUP BY i.product_id
    ),
    locked AS MATERIALIZED (
        SELECT p.id, p.name, p.stock_qty, p.low_stock_threshold FROM inventory.products AS p
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
    ),
    stock_restored AS (
        INSERT INTO outbox.events (type, aggregate, aggregate_id, data)
        SELECT 'stock.restored', 'product', l.id,
               jsonb_build_object('product_id', l.id, 'name', l.name, 'stock_qty', l.stock_qty + i.qty,
                                  'threshold', l.low_stock_threshold)
          FROM items AS i JOIN locked AS l ON l.id = i.product_id
         WHERE l.stock_qty <= l.low_stock_threshold AND l.stock_qty + i.qty > l.low_stock_threshold
         ORDER BY l.id
    )
"""

# Cancel also sets reconcile_at: money may be held for the order (an authorization, a capture, or a call to
# payments still in flight), and the reconciler voids or refunds whatever the cancel itself cannot.
# The status it had is read under the row lock first (RETURNING shows only the new row): the event says
# what was cancelled, and how much captured money the cancel gives back.
CANCEL_ORDER = text(
    f"""
    WITH previous AS (
        SELECT id, status FROM orders.orders
         WHERE id = :order_id AND status IN ('PENDING', 'PAYMENT_FAILED', 'AUTHORIZED', 'PAID')
           FOR UPDATE
    ),
    moved AS (
        UPDATE orders.orders AS o
           SET status = 'CANCELLED', updated_at = now(),
               reconcile_at = GREATEST(o.reconcile_at,
                                       now() + make_interval(secs => CAST(:budget_s AS float8)))
          FROM previous
         WHERE o.id = previous.id AND o.status IN ('PENDING', 'PAYMENT_FAILED', 'AUTHORIZED', 'PAID')
        RETURNING o.id, o.total_cents, o.customer, o.captured_cents, o.refunded_cents,
                  previous.status AS previous_status
    ),
    {_RESTOCK},
    event AS (
        INSERT INTO outbox.events (type, aggregate, aggregate_id, data)
        SELECT 'order.cancelled', 'order', m.id,
               {_order_data("m")} || jsonb_build_object(
                   'previous_status', m.previous_status,
                   'refund_cents', CASE WHEN m.previous_status = 'PAID'
                                        THEN GREATEST(m.captured_cents - m.refunded_cents, 0) ELSE 0 END)
          FROM moved AS m
    )
    SELECT (SELECT id FROM moved) AS cancelled_id, (SELECT count(*) FROM restocked) AS restocked
    """
)

# The expiry sweep: claim a batch of overdue reservations with SKIP LOCKED (another sweeper, a cancel or an
# authorize holding a row is simply passed over: whoever holds it decides), expire them and restock, all in
# one statement. An order with a call to payments in flight keeps its reconcile_at, so the reconciler voids
# an authorization that lands after the expiry.
EXPIRE_ORDERS = text(
    f"""
    WITH due AS (
        SELECT id FROM orders.orders
         WHERE status IN ('PENDING', 'PAYMENT_FAILED') AND expires_at <= now()
         ORDER BY expires_at
         LIMIT :limit
           FOR UPDATE SKIP LOCKED
    ),
    moved AS (
        UPDATE orders.orders AS o SET status = 'EXPIRED', updated_at = now()
          FROM due WHERE o.id = due.id AND o.status IN ('PENDING', 'PAYMENT_FAILED')
        RETURNING o.id, o.total_cents, o.customer
    ),
    {_RESTOCK},
    event AS (
        INSERT INTO outbox.events (type, aggregate, aggregate_id, data)
        SELECT 'order.expired', 'order', m.id, {_order_data("m")}
          FROM moved AS m
         ORDER BY m.id
    )
    SELECT COALESCE((SELECT array_agg(id ORDER BY id) FROM moved), '{{}}') AS expired_ids,
           (SELECT count(*) FROM restocked) AS restocked
    """
)

ORDER_COLUMNS = """
    o.id, o.status, o.total_cents, o.payment_attempts, o.payment_id, o.payment_failure_code,
    CASE WHEN o.status IN ('PENDING', 'PAYMENT_FAILED') THEN o.expires_at END AS expires_at,
    o.authorized_cents, o.captured_cents, o.refunded_cents, o.card_last4, o.customer,
    o.created_at, o.updated_at,
    COALESCE((SELECT json_agg(json_build_object('product_id', i.product_id, 'qty', i.qty,
                                                'price_cents', i.price_cents) ORDER BY i.product_id)
                FROM orders.order_items AS i WHERE i.order_id = o.id), '[]') AS items,
    COALESCE((SELECT json_agg(json_build_object('id', r.id, 'amount_cents', r.amount_cents,
                                                'reason', r.reason, 'created_at', r.created_at) ORDER BY r.id)
                FROM orders.refunds AS r WHERE r.order_id = o.id), '[]') AS refunds
"""


@dataclass(frozen=True)
class PlaceOrderResult:
    order_id: int | None
    status: str | None
    total_cents: int | None
    expires_at: datetime | None
    refused_lines: list[dict[str, Any]]
    lock_wait_s: float = 0.0
    replayed: bool = False  # the order its idempotency claim had already made, nothing taken now


@dataclass(frozen=True)
class Placement:
    """One order to place: ``lines`` (product_id, qty) pairs, product ids distinct and ascending."""

    lines: Sequence[tuple[int, int]]
    idempotency_key: str | None
    customer: dict[str, Any] | None


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


async def place_order(
    conn: AsyncConnection,
    lines: Sequence[tuple[int, int]],
    idempotency_key: str | None,
    *,
    reservation_s: float,
    customer: dict[str, Any] | None,
) -> PlaceOrderResult:
    """``lines``: (product_id, qty) pairs, product ids distinct and ascending."""
    row = (
        await conn.execute(
            PLACE_ORDER,
            {
                "product_ids": [product_id for product_id, _ in lines],
                "qtys": [qty for _, qty in lines],
                "idempotency_key": idempotency_key,
                "reservation_s": reservation_s,
                "customer": json.dumps(customer) if customer is not None else None,
            },
        )
    ).one()
    return PlaceOrderResult(
        order_id=row.order_id,
        status=row.status,
        total_cents=row.total_cents,
        expires_at=row.expires_at,
        refused_lines=_json(row.refused_lines) or [],
        lock_wait_s=float(row.lock_wait_s or 0.0),
    )


async def place_orders(
    conn: AsyncConnection, placements: Sequence[Placement], *, reservation_s: float
) -> list[PlaceOrderResult]:
    """Each placement's outcome, in the same order (see PLACE_ORDERS)."""
    rows = (
        await conn.execute(
            PLACE_ORDERS,
            {
                "line_counts": [len(p.lines) for p in placements],
                "product_ids": [product_id for p in placements for product_id, _ in p.lines],
                "qtys": [qty for p in placements for _, qty in p.lines],
                "idempotency_keys": [p.idempotency_key for p in placements],
                "customers": [json.dumps(p.customer) if p.customer is not None else None for p in placements],
                "reservation_s": reservation_s,
            },
        )
    ).all()
    return [
        PlaceOrderResult(
            order_id=row.order_id,
            status=row.status,
            total_cents=row.total_cents,
            expires_at=row.expires_at,
            refused_lines=_json(row.refused_lines) or [],
            lock_wait_s=float(row.lock_wait_s or 0.0),
            replayed=row.replayed,
        )
        for row in sorted(rows, key=lambda row: int(row.order_index))
    ]


async def stock_of(conn: AsyncConnection, product_ids: Sequence[int]) -> dict[int, int]:
    """Each existing product's stock now (no lock: for describing a refusal, never for deciding one)."""
    rows = (
        await conn.execute(
            text("SELECT id, stock_qty FROM inventory.products WHERE id = ANY (CAST(:ids AS bigint[]))"),
            {"ids": list(product_ids)},
        )
    ).all()
    return {row.id: row.stock_qty for row in rows}


async def cancel_order(conn: AsyncConnection, order_id: int, *, budget_s: float) -> bool:
    """True if this call moved the order to CANCELLED (and restocked it)."""
    row = (await conn.execute(CANCEL_ORDER, {"order_id": order_id, "budget_s": budget_s})).one()
    return row.cancelled_id is not None


async def expire_orders(conn: AsyncConnection, *, limit: int) -> list[int]:
    """Expire (and restock) up to ``limit`` overdue reservations nobody else holds; their ids."""
    row = (await conn.execute(EXPIRE_ORDERS, {"limit": limit})).one()
    return list(row.expired_ids)


def _decode(row: Any) -> dict[str, Any]:
    data = dict(row._mapping)
    for column in ("items", "refunds", "customer"):
        data[column] = _json(data[column])
    return data


async def get_order(session: AsyncSession | AsyncConnection, order_id: int) -> dict[str, Any] | None:
    row = (
        await session.execute(
            text(f"SELECT {ORDER_COLUMNS} FROM orders.orders AS o WHERE o.id = :id"), {"id": order_id}
        )
    ).first()
    return _decode(row) if row is not None else None


async def get_order_by_idempotency_claim(conn: AsyncConnection, key: str) -> dict[str, Any] | None:
    """The order made under the key's *current* claim, if any (never one made under an expired claim)."""
    row = (
        await conn.execute(
            text(
                f"""
                SELECT {ORDER_COLUMNS} FROM orders.orders AS o
                  JOIN orders.idempotency_keys AS k
                    ON k.key = o.idempotency_key AND k.created_at = o.idempotency_claimed_at
                 WHERE o.idempotency_key = :key
                """
            ),
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


# ---------------------------------------------------------------------------------------------------------
# Money transitions. Each is one conditional UPDATE: of two racing transitions exactly one moves the order,
# the other changes nothing and reads the winner's outcome. Before orders calls payments, it pushes the
# order's reconcile_at past the call's whole retry budget in the statement that checks the state; only the
# reconciler clears it, after it has seen payments agree with the order (see orders.reconciler).
# ---------------------------------------------------------------------------------------------------------
BEGIN_PAYMENTS_CALL = text(
    """
    UPDATE orders.orders
       SET reconcile_at = GREATEST(reconcile_at, now() + make_interval(secs => CAST(:budget_s AS float8)))
     WHERE id = :order_id AND status = ANY (CAST(:statuses AS text[]))
       AND (NOT CAST(:unexpired AS boolean) OR expires_at > now())
    RETURNING payment_attempts, total_cents, payment_id
    """
)


@dataclass(frozen=True)
class PaymentsCallClaim:
    payment_attempts: int
    total_cents: int
    payment_id: int | None


async def begin_payments_call(
    conn: AsyncConnection,
    order_id: int,
    statuses: Sequence[str],
    *,
    budget_s: float,
    unexpired: bool = False,
) -> PaymentsCallClaim | None:
    """Mark the order as having a call to payments in flight, if it is in one of ``statuses`` (and, with
    ``unexpired``, its reservation has not passed). None: it is not, and nothing was marked."""
    row = (
        await conn.execute(
            BEGIN_PAYMENTS_CALL,
            {"order_id": order_id, "statuses": list(statuses), "budget_s": budget_s, "unexpired": unexpired},
        )
    ).first()
    if row is None:
        return None
    return PaymentsCallClaim(row.payment_attempts, row.total_cents, row.payment_id)


# Authorized by a payment of exactly the order's total, for the attempt it was made under (a decline or an
# authorization for attempt n counts once however many requests saw it).
MARK_AUTHORIZED = text(
    f"""
    WITH moved AS (
        UPDATE orders.orders
           SET status = 'AUTHORIZED', payment_id = :payment_id, authorized_cents = :amount_cents,
               card_last4 = :card_last4, payment_failure_code = NULL, payment_attempts = :attempt,
               updated_at = now()
         WHERE id = :order_id AND status IN ('PENDING', 'PAYMENT_FAILED') AND payment_attempts < :attempt
           AND total_cents = :amount_cents
        RETURNING id, total_cents, customer, authorized_cents, payment_id
    ),
    event AS (
        INSERT INTO outbox.events (type, aggregate, aggregate_id, data)
        SELECT 'order.authorized', 'order', m.id,
               {_order_data("m")}
               || jsonb_build_object('authorized_cents', m.authorized_cents, 'payment_id', m.payment_id)
          FROM moved AS m
    )
    SELECT id FROM moved
    """
)
MARK_PAYMENT_FAILED = text(
    """
    WITH moved AS (
        UPDATE orders.orders
           SET status = 'PAYMENT_FAILED', payment_attempts = :attempt, payment_failure_code = :failure_code,
               card_last4 = :card_last4, updated_at = now()
         WHERE id = :order_id AND status IN ('PENDING', 'PAYMENT_FAILED') AND payment_attempts < :attempt
        RETURNING id, payment_failure_code, payment_attempts
    ),
    event AS (
        INSERT INTO outbox.events (type, aggregate, aggregate_id, data)
        SELECT 'payment.declined', 'order', m.id,
               jsonb_build_object('order_id', m.id, 'payment_id', CAST(:payment_id AS bigint),
                                  'failure_code', m.payment_failure_code, 'attempt', m.payment_attempts)
          FROM moved AS m
    )
    SELECT id FROM moved
    """
)
MARK_PAID = text(
    f"""
    WITH moved AS (
        UPDATE orders.orders
           SET status = 'PAID', captured_cents = :captured_cents, updated_at = now()
         WHERE id = :order_id AND status = 'AUTHORIZED' AND payment_id IS NOT DISTINCT FROM :payment_id
           AND total_cents = :captured_cents AND authorized_cents = :captured_cents
        RETURNING id, total_cents, customer, captured_cents, payment_id
    ),
    event AS (
        INSERT INTO outbox.events (type, aggregate, aggregate_id, data)
        SELECT 'order.paid', 'order', m.id,
               {_order_data("m")}
               || jsonb_build_object('captured_cents', m.captured_cents, 'payment_id', m.payment_id)
          FROM moved AS m
    )
    SELECT id FROM moved
    """
)


async def mark_authorized(
    conn: AsyncConnection,
    order_id: int,
    *,
    attempt: int,
    payment_id: int | None,
    amount_cents: int,
    card_last4: str | None,
) -> bool:
    params = {
        "order_id": order_id,
        "attempt": attempt,
        "payment_id": payment_id,
        "amount_cents": amount_cents,
        "card_last4": card_last4,
    }
    return (await conn.execute(MARK_AUTHORIZED, params)).first() is not None


async def mark_payment_failed(
    conn: AsyncConnection,
    order_id: int,
    *,
    attempt: int,
    failure_code: str,
    card_last4: str | None,
    payment_id: int | None = None,
) -> bool:
    """``payment_id``: the declined payment, for the payment.declined event only."""
    params = {
        "order_id": order_id,
        "payment_id": payment_id,
        "attempt": attempt,
        "failure_code": failure_code,
        "card_last4": card_last4,
    }
    return (await conn.execute(MARK_PAYMENT_FAILED, params)).first() is not None


async def mark_paid(
    conn: AsyncConnection, order_id: int, *, payment_id: int | None, captured_cents: int
) -> bool:
    params = {"order_id": order_id, "payment_id": payment_id, "captured_cents": captured_cents}
    return (await conn.execute(MARK_PAID, params)).first() is not None


# The order's money follows its own payment as payments reports it (captured and refunded only ever grow,
# so GREATEST makes a late, older answer harmless), its refunds are recorded once each (by payments' refund
# id; a client's reason and key are kept when its request is the one recording), and a PAID order refunded
# in full becomes REFUNDED. Each refund this statement recorded first (an upsert's inserted row has xmax 0;
# one another request recorded earlier is only updated) writes its order.refunded event: once per refund,
# with the refunds of the payment up to it as refunded_cents.
RECORD_PAYMENT_STATE = text(
    f"""
    WITH recorded AS (
        INSERT INTO orders.refunds AS r
               (order_id, amount_cents, reason, idempotency_key, payment_refund_id, created_at)
        SELECT :order_id, n.amount_cents,
               CASE WHEN n.refund_id = :refund_id THEN CAST(:reason AS text) END,
               CASE WHEN n.refund_id = :refund_id THEN CAST(:refund_key AS text) END,
               n.refund_id, n.created_at
          FROM jsonb_to_recordset(CAST(CAST(:refunds AS text) AS jsonb))
               AS n (refund_id bigint, amount_cents bigint, created_at timestamptz)
         WHERE EXISTS (SELECT 1 FROM orders.orders WHERE id = :order_id AND payment_id = :payment_id)
        ON CONFLICT (payment_refund_id) DO UPDATE
           SET reason = COALESCE(r.reason, EXCLUDED.reason),
               idempotency_key = COALESCE(r.idempotency_key, EXCLUDED.idempotency_key)
        RETURNING r.id, r.payment_refund_id, r.amount_cents, r.reason, r.xmax = 0 AS inserted
    ),
    updated AS (
        UPDATE orders.orders
           SET captured_cents = GREATEST(captured_cents, :captured_cents),
               refunded_cents = GREATEST(refunded_cents, :refunded_cents),
               status = CASE WHEN status = 'PAID' AND GREATEST(refunded_cents, :refunded_cents) > 0
                                  AND GREATEST(refunded_cents, :refunded_cents)
                                      = GREATEST(captured_cents, :captured_cents)
                             THEN 'REFUNDED' ELSE status END,
               updated_at = now()
         WHERE id = :order_id AND payment_id = :payment_id
        RETURNING id, total_cents, customer, status
    ),
    event AS (
        INSERT INTO outbox.events (type, aggregate, aggregate_id, data)
        SELECT 'order.refunded', 'order', u.id,
               {_order_data("u")} || jsonb_build_object(
                   'refund_id', r.id, 'amount_cents', r.amount_cents, 'reason', r.reason, 'status', u.status,
                   'refunded_cents',
                   (SELECT COALESCE(sum(n.amount_cents), 0)
                      FROM jsonb_to_recordset(CAST(CAST(:refunds AS text) AS jsonb))
                           AS n (refund_id bigint, amount_cents bigint)
                     WHERE n.refund_id <= r.payment_refund_id))
          FROM recorded AS r CROSS JOIN updated AS u
         WHERE r.inserted
         ORDER BY r.payment_refund_id
    )
    SELECT status FROM updated
    """
)


@dataclass(frozen=True)
class RefundRecord:
    refund_id: int
    amount_cents: int
    created_at: datetime


async def record_payment_state(
    conn: AsyncConnection,
    order_id: int,
    *,
    payment_id: int,
    captured_cents: int,
    refunded_cents: int,
    refunds: Sequence[RefundRecord],
    refund_id: int | None = None,
    reason: str | None = None,
    refund_key: str | None = None,
) -> str | None:
    """Bring the order's money in line with its payment; the order's status after it."""
    payload = [
        {"refund_id": r.refund_id, "amount_cents": r.amount_cents, "created_at": r.created_at.isoformat()}
        for r in refunds
    ]
    row = (
        await conn.execute(
            RECORD_PAYMENT_STATE,
            {
                "order_id": order_id,
                "payment_id": payment_id,
                "captured_cents": captured_cents,
                "refunded_cents": refunded_cents,
                "refunds": json.dumps(payload),
                "refund_id": refund_id,
                "reason": reason,
                "refund_key": refund_key,
            },
        )
    ).first()
    return row.status if row is not None else None


# The reconciler's claim: due orders nobody else holds, leased (reconcile_at pushed forward) and committed
# before anything is asked, so a second reconciler skips them and a crashed one's lease simply runs out.
CLAIM_DUE = text(
    """
    UPDATE orders.orders AS o
       SET reconcile_at = now() + make_interval(secs => CAST(:lease_s AS float8))
      FROM (SELECT id FROM orders.orders
             WHERE reconcile_at <= now() + make_interval(secs => CAST(:horizon_s AS float8))
             ORDER BY reconcile_at
             LIMIT :limit
               FOR UPDATE SKIP LOCKED) AS due
     WHERE o.id = due.id
    RETURNING o.id, o.reconcile_at
    """
)
FINISH_RECONCILE = text(
    "UPDATE orders.orders SET reconcile_at = NULL WHERE id = :order_id AND reconcile_at = :lease RETURNING id"
)


async def claim_due(
    conn: AsyncConnection, *, lease_s: float, horizon_s: float, limit: int
) -> list[tuple[int, datetime]]:
    rows = (await conn.execute(CLAIM_DUE, {"lease_s": lease_s, "horizon_s": horizon_s, "limit": limit})).all()
    return [(row.id, row.reconcile_at) for row in rows]


async def finish_reconcile(conn: AsyncConnection, order_id: int, lease: datetime) -> bool:
    """Clear the order's reconcile_at, unless a call to payments began after this lease was taken."""
    return (await conn.execute(FINISH_RECONCILE, {"order_id": order_id, "lease": lease})).first() is not None
