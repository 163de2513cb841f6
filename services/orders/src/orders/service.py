"""Orders use cases: place_order, get_order, list_orders, cancel_order."""

from collections import defaultdict
from collections.abc import Sequence

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from orders import repository
from orders.errors import InsufficientStock, InvalidQuantity, OrderNotCancellable, OrderNotFound, UnknownProduct
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
    lines = merge_lines(items)
    async with engine.connect() as conn:
        # Autocommit: the one statement is the whole transaction (see repository.PLACE_ORDER).
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        try:
            result = await repository.place_order(conn, lines, idempotency_key)
        except IntegrityError:
            # Only a recovered idempotency key can collide: an earlier attempt with this key did create
            # the order before its process died. That order is the answer.
            existing = await repository.get_order_by_idempotency_key(conn, idempotency_key) if idempotency_key else None
            if existing is None:
                raise
            return OrderPlaced(orderId=existing["id"], status=existing["status"], total_cents=existing["total_cents"])
    if result.order_id is not None:
        log.info("order_placed", order_id=result.order_id, total_cents=result.total_cents, lines=len(lines))
        return OrderPlaced(orderId=result.order_id, status=result.status, total_cents=result.total_cents)

    unknown = [line["product_id"] for line in result.refused_lines if line["available"] is None]
    if unknown:
        log.info("order_refused", reason="unknown_product", product_ids=unknown)
        raise UnknownProduct(
            f"No such product: {', '.join(map(str, unknown))}.", product_ids=unknown
        )
    short = [line for line in result.refused_lines if line["available"] < line["requested"]]
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
            f"Order {order_id} is {order['status']} and cannot be cancelled.", order_id=order_id,
            order_status=order["status"],
        )
    return OrderRead.model_validate(order)
