"""Orders use cases: place_order, get_order, list_orders, cancel_order, capture_payment."""

from collections import defaultdict
from collections.abc import Sequence

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from orders import metrics, repository
from orders.errors import (
    InsufficientStock,
    InvalidQuantity,
    OrderNotCancellable,
    OrderNotCapturable,
    OrderNotFound,
    UnknownProduct,
)
from orders.payments import PaymentsClient
from orders.schemas import MAX_QTY_PER_LINE, OrderLineIn, OrderPlaced, OrderRead

log = structlog.get_logger()


def merge_lines(items: Sequence[OrderLineIn]) -> list[tuple[int, int]]:
    """Lines for the same product become one; ascending product id, the order rows are locked in."""
    merged: dict[int, int] = defaultdict(int)
    for item in items:
        merged[item.product_id] += item.qty
    too_many = {pid: qty for pid, qty in merged.items() if qty > MAX_QTY_PER_LINE}
    if too_many:
        pid, qty = next(iter(too_many.items()))
        raise InvalidQuantity(
            f"At most {MAX_QTY_PER_LINE} units of one product per order; product {pid} adds up to {qty}.",
            product_id=pid,
        )
    return sorted(merged.items())


async def place_order(
    engine: AsyncEngine, items: Sequence[OrderLineIn], *, idempotency_key: str | None = None
) -> OrderPlaced:
    try:
        lines = merge_lines(items)
    except InvalidQuantity:
        metrics.ORDERS_REFUSED.labels("invalid_quantity").inc()
        raise
    async with engine.connect() as conn:
        # Autocommit: the one statement is the whole transaction (see repository.PLACE_ORDER).
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        try:
            result = await repository.place_order(conn, lines, idempotency_key)
        except IntegrityError:
            # Only a recovered idempotency key can collide: an earlier attempt with this key did create
            # the order before its process died. That order is the answer.
            existing = (
                await repository.get_order_by_idempotency_key(conn, idempotency_key)
                if idempotency_key
                else None
            )
            if existing is None:
                raise
            return OrderPlaced(
                orderId=existing["id"], status=existing["status"], total_cents=existing["total_cents"]
            )
    metrics.LOCK_WAIT.observe(result.lock_wait_s)
    if result.order_id is not None:
        metrics.ORDERS_PLACED.inc()
        metrics.UNITS_SOLD.inc(sum(qty for _, qty in lines))
        log.info("order_placed", order_id=result.order_id, total_cents=result.total_cents, lines=len(lines))
        return OrderPlaced(orderId=result.order_id, status=result.status, total_cents=result.total_cents)

    unknown = [line["product_id"] for line in result.refused_lines if line["available"] is None]
    if unknown:
        metrics.ORDERS_REFUSED.labels("unknown_product").inc()
        log.info("order_refused", reason="unknown_product", product_ids=unknown)
        raise UnknownProduct(f"No such product: {', '.join(map(str, unknown))}.", product_ids=unknown)
    short = [line for line in result.refused_lines if line["available"] < line["requested"]]
    metrics.ORDERS_REFUSED.labels("insufficient_stock").inc()
    log.info("order_refused", reason="insufficient_stock", product_ids=[s["product_id"] for s in short])
    described = "; ".join(
        f"product {s['product_id']}: requested {s['requested']}, available {s['available']}" for s in short
    )
    raise InsufficientStock(f"Not enough stock ({described}).", items=short)


async def get_order(session: AsyncSession, order_id: int) -> OrderRead:
    order = await repository.get_order(session, order_id)
    if order is None:
        raise OrderNotFound(f"There is no order {order_id}.", order_id=order_id)
    return OrderRead.model_validate(order)


async def list_orders(
    session: AsyncSession, *, status: str | None, after: int | None, limit: int
) -> list[OrderRead]:
    rows = await repository.list_orders(session, status=status, before=after, limit=limit)
    return [OrderRead.model_validate(row) for row in rows]


async def cancel_order(engine: AsyncEngine, order_id: int) -> OrderRead:
    """PENDING or PAYMENT_FAILED → CANCELLED, stock returned exactly once. Cancelling again is harmless."""
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        moved = await repository.cancel_order(conn, order_id)
        order = await repository.get_order(conn, order_id)
    if order is None:
        raise OrderNotFound(f"There is no order {order_id}.", order_id=order_id)
    if moved:
        log.info("order_cancelled", order_id=order_id)
    elif order["status"] != "CANCELLED":
        raise OrderNotCancellable(
            f"Order {order_id} is {order['status']} and cannot be cancelled.",
            order_id=order_id,
            order_status=order["status"],
        )
    return OrderRead.model_validate(order)


def capture_key(order_id: int, attempt: int) -> str:
    """One key per order and attempt: every retry and every concurrent capture of one attempt converge on one
    charge, while a capture after a decline is a new attempt with a new key."""
    return f"order-{order_id}-attempt-{attempt}"


async def capture_payment(engine: AsyncEngine, payments: PaymentsClient, order_id: int) -> OrderRead:
    """Charge the order's total: PAID, or PAYMENT_FAILED with the reason. A PAID order is returned as it is.

    No transaction and no row lock is held while payments is called: read the order, call payments (which
    retries safely with the attempt's key), then move the order with one conditional UPDATE.
    """
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        order = await repository.get_order(conn, order_id)
    if order is None:
        raise OrderNotFound(f"There is no order {order_id}.", order_id=order_id)
    if order["status"] == "PAID":
        return OrderRead.model_validate(order)
    if order["status"] == "CANCELLED":
        raise OrderNotCapturable(
            f"Order {order_id} is cancelled and cannot be captured.",
            order_id=order_id,
            order_status="CANCELLED",
        )

    attempt = order["payment_attempts"] + 1
    if order["total_cents"] == 0:
        charge = None  # nothing to charge: a free order is paid as it is
    else:
        key = capture_key(order_id, attempt)
        charge = await payments.charge(
            order_id=order_id, amount_cents=order["total_cents"], idempotency_key=key
        )
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        moved = await repository.record_capture_outcome(conn, order_id, attempt, charge)
        order = await repository.get_order(conn, order_id)
    assert order is not None  # orders are never deleted
    charge_id = charge.charge_id if charge else None
    if moved:
        metrics.CAPTURES.labels(metrics.capture_outcome(order["status"], order["payment_failure_code"])).inc()
        log.info(
            "order_captured",
            order_id=order_id,
            attempt=attempt,
            status=order["status"],
            charge_id=charge_id,
            failure_code=order["payment_failure_code"],
        )
    elif order["status"] == "CANCELLED" and charge is not None and charge.succeeded:
        # Cancelled while the charge was being made: the stock is back on the shelf, so the order stays
        # cancelled and the succeeded charge is recorded on it, to be refunded (payments has no refunds yet).
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await repository.record_charge_on_cancelled(conn, order_id, charge_id)
        log.error("charge_needs_refund", order_id=order_id, charge_id=charge_id)
        raise OrderNotCapturable(
            f"Order {order_id} was cancelled while it was being charged; charge {charge_id} is to be "
            "refunded.",
            order_id=order_id,
            order_status="CANCELLED",
            charge_id=charge_id,
        )
    elif order["status"] == "CANCELLED":
        raise OrderNotCapturable(
            f"Order {order_id} is cancelled and cannot be captured.",
            order_id=order_id,
            order_status="CANCELLED",
        )
    return OrderRead.model_validate(order)
