"""Orders use cases: place, read and list orders; authorize, capture, cancel, refund; settle with payments.

Every money step follows one pattern: a conditional UPDATE checks the order's state and marks a call to
payments in flight (reconcile_at), payments is called with no transaction or row lock held (with a key
derived from the order, so every retry and every concurrent request for the step converge on one payment),
and a second conditional UPDATE records the answer. Whatever a timeout or a crash leaves between the two is
found by the reconciler through reconcile_at and settled by ``settle_order``.
"""

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from orders import metrics, repository
from orders.batcher import OrderBatcher
from orders.errors import (
    AuthorizationExpired,
    AuthorizationInProgress,
    InsufficientStock,
    InvalidCard,
    InvalidQuantity,
    OrderExpired,
    OrderNotAuthorizable,
    OrderNotAuthorized,
    OrderNotCancellable,
    OrderNotCapturable,
    OrderNotFound,
    OrderNotRefundable,
    PaymentsRejected,
    PaymentsUnavailable,
    RefundExceedsCaptured,
    UnknownProduct,
)
from orders.payments import CAPTURED_STATUSES, Payment, PaymentsClient, PaymentsRefusal
from orders.schemas import Customer, OrderLineIn, OrderPlaced, OrderRead
from servicekit.db import autocommit
from servicekit.idempotency import MAX_KEY_LENGTH
from servicekit.rules import MAX_QTY_PER_LINE

log = structlog.get_logger()

UNSETTLED = ("PENDING", "PAYMENT_FAILED")
CLOSED = ("CANCELLED", "EXPIRED")


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
    engine: AsyncEngine,
    items: Sequence[OrderLineIn],
    *,
    reservation_s: float,
    customer: Customer | None = None,
    idempotency_key: str | None = None,
    batcher: OrderBatcher | None = None,
) -> OrderPlaced:
    """With a ``batcher`` the order goes in the next batch (group commit), else in a statement of its own;
    either way it is decided alone, all or nothing, with the same answer."""
    try:
        lines = merge_lines(items)
    except InvalidQuantity:
        metrics.ORDERS_REFUSED.labels("invalid_quantity").inc()
        raise
    snapshot = customer.model_dump(mode="json") if customer is not None else None
    result: repository.PlaceOrderResult | None = None
    if batcher is not None:
        try:
            result = await batcher.place(lines, idempotency_key, snapshot)
        except IntegrityError:
            # The batch was rolled back whole (some order's idempotency claim collided): this order is
            # decided again, alone, below; so is every other order of that batch.
            log.info("order_batch_retried_alone")
    if result is None:
        result = await _place_alone(
            engine, lines, idempotency_key, reservation_s=reservation_s, customer=snapshot
        )
    if result.replayed:
        return OrderPlaced(
            orderId=result.order_id,
            status=result.status,
            total_cents=result.total_cents,
            expires_at=result.expires_at,
        )
    metrics.LOCK_WAIT.observe(result.lock_wait_s)
    if result.order_id is not None:
        metrics.ORDERS_PLACED.inc()
        metrics.UNITS_SOLD.inc(sum(qty for _, qty in lines))
        log.info("order_placed", order_id=result.order_id, total_cents=result.total_cents, lines=len(lines))
        return OrderPlaced(
            orderId=result.order_id,
            status=result.status,
            total_cents=result.total_cents,
            expires_at=result.expires_at,
        )

    unknown = [line["product_id"] for line in result.refused_lines if line["available"] is None]
    if unknown:
        metrics.ORDERS_REFUSED.labels("unknown_product").inc()
        log.info("order_refused", reason="unknown_product", product_ids=unknown)
        raise UnknownProduct(f"No such product: {', '.join(map(str, unknown))}.", product_ids=unknown)
    # Every line, if none is short now (only after a CHECK refusal, whose stock was read afterwards).
    short = [line for line in result.refused_lines if line["available"] < line["requested"]]
    short = short or result.refused_lines
    metrics.ORDERS_REFUSED.labels("insufficient_stock").inc()
    log.info("order_refused", reason="insufficient_stock", product_ids=[s["product_id"] for s in short])
    described = "; ".join(
        f"product {s['product_id']}: requested {s['requested']}, available {s['available']}" for s in short
    )
    raise InsufficientStock(f"Not enough stock ({described}).", items=short)


async def _place_alone(
    engine: AsyncEngine,
    lines: Sequence[tuple[int, int]],
    idempotency_key: str | None,
    *,
    reservation_s: float,
    customer: dict[str, Any] | None,
) -> repository.PlaceOrderResult:
    async with autocommit(engine) as conn:
        # Autocommit: the one statement is the whole transaction (see repository.PLACE_ORDER).
        try:
            return await repository.place_order(
                conn, lines, idempotency_key, reservation_s=reservation_s, customer=customer
            )
        except IntegrityError as exc:
            if _stock_check_failed(exc):
                return await _refused_by_check(conn, lines)
            # Only a recovered claim of an idempotency key can collide: an earlier attempt under this very
            # claim did create the order before its process died. That order is the answer.
            existing = (
                await repository.get_order_by_idempotency_claim(conn, idempotency_key)
                if idempotency_key
                else None
            )
            if existing is None:
                raise
            return repository.PlaceOrderResult(
                order_id=existing["id"],
                status=existing["status"],
                total_cents=existing["total_cents"],
                expires_at=existing["expires_at"],
                refused_lines=[],
                replayed=True,
            )


def _stock_check_failed(exc: IntegrityError) -> bool:
    """The products CHECK (stock_qty >= 0) refused the statement's decrement."""
    driver_error = exc.orig.__cause__ if exc.orig is not None else None
    return (
        isinstance(driver_error, asyncpg.CheckViolationError)
        and getattr(driver_error, "table_name", None) == "products"
    )


async def _refused_by_check(
    conn: AsyncConnection, lines: Sequence[tuple[int, int]]
) -> repository.PlaceOrderResult:
    """Defence in depth: PLACE_ORDER decides on the locked stock and writes exactly that minus the line, so
    the CHECK cannot refuse it (ADR 0001). Should a change ever bring that back, the buyer gets the refusal
    the CHECK made, a 409 with each line's stock as it is now, not a 500; the statement wrote nothing."""
    stock = await repository.stock_of(conn, [product_id for product_id, _ in lines])
    log.error("order_stock_check_violated", product_ids=[product_id for product_id, _ in lines])
    refused = [
        {"product_id": product_id, "requested": qty, "available": stock.get(product_id)}
        for product_id, qty in lines
    ]
    return repository.PlaceOrderResult(
        order_id=None, status=None, total_cents=None, expires_at=None, refused_lines=refused
    )


def _not_found(order_id: int) -> OrderNotFound:
    return OrderNotFound(f"There is no order {order_id}.", order_id=order_id)


async def _read(conn: AsyncSession | AsyncConnection, order_id: int) -> dict[str, Any]:
    order = await repository.get_order(conn, order_id)
    if order is None:
        raise _not_found(order_id)
    return order


async def get_order(session: AsyncSession, order_id: int) -> OrderRead:
    return OrderRead.model_validate(await _read(session, order_id))


async def list_orders(
    session: AsyncSession, *, status: str | None, after: int | None, limit: int
) -> list[OrderRead]:
    rows = await repository.list_orders(session, status=status, before=after, limit=limit)
    return [OrderRead.model_validate(row) for row in rows]


# The keys of ADR 0004, one per order and step: every retry and every concurrent request for one step
# converge on one payment at payments, whatever process sends it.
def authorize_key(order_id: int, attempt: int) -> str:
    return f"order-{order_id}-authorize-{attempt}"


def capture_key(order_id: int, payment_id: int) -> str:
    return f"order-{order_id}-capture-{payment_id}"


def void_key(order_id: int, payment_id: int) -> str:
    return f"order-{order_id}-void-{payment_id}"


def refund_key(order_id: int, client_key: str) -> str:
    key = f"order-{order_id}-refund-{client_key}"
    if len(key) <= MAX_KEY_LENGTH:
        return key
    return f"order-{order_id}-refund-sha256-{hashlib.sha256(client_key.encode()).hexdigest()}"


def cancel_refund_key(order_id: int, payment_id: int, refunded_cents: int) -> str:
    """The remainder's refund on cancel. The key names the refunded amount it was computed from: a client
    refund landing in between changes the remainder, and the next attempt is then a new request (payments
    caps every refund at what is left, so two such refunds can never return more than was captured)."""
    return f"order-{order_id}-cancel-refund-{payment_id}-{refunded_cents}"


async def authorize_payment(
    engine: AsyncEngine, payments: PaymentsClient, order_id: int, card_number: str, *, budget_s: float
) -> OrderRead:
    """Authorize the order's total on the card: AUTHORIZED, or PAYMENT_FAILED with the reason. The amount is
    the order's, never the client's; the card number goes to payments once and nowhere else."""
    async with autocommit(engine) as conn:
        claim = await repository.begin_payments_call(
            conn, order_id, UNSETTLED, budget_s=budget_s, unexpired=True
        )
        order = await repository.get_order(conn, order_id) if claim is None else None
    if claim is None:
        if order is None:
            raise _not_found(order_id)
        if order["status"] in ("AUTHORIZED", "PAID"):
            return OrderRead.model_validate(order)
        if order["status"] in (*UNSETTLED, "EXPIRED"):
            raise OrderExpired(f"Order {order_id}'s reservation has expired.", order_id=order_id)
        raise OrderNotAuthorizable(
            f"Order {order_id} is {order['status']} and cannot be paid for.",
            order_id=order_id,
            order_status=order["status"],
        )

    attempt = claim.payment_attempts + 1
    if claim.total_cents == 0:  # nothing to authorize: a free order is authorized as it is
        async with autocommit(engine) as conn:
            await repository.mark_authorized(
                conn, order_id, attempt=attempt, payment_id=None, amount_cents=0, card_last4=None
            )
            return OrderRead.model_validate(await _read(conn, order_id))

    try:
        payment = await payments.authorize(
            order_id=order_id,
            amount_cents=claim.total_cents,
            card_number=card_number,
            idempotency_key=authorize_key(order_id, attempt),
        )
    except PaymentsRefusal as refusal:
        metrics.AUTHORIZATIONS.labels("refused").inc()
        if refusal.code == "idempotency_key_reused":
            raise AuthorizationInProgress(
                f"An earlier authorization of order {order_id} with another card is still being settled; "
                "retry with that card, or shortly with this one.",
                headers={"Retry-After": "10"},
            ) from None
        if refusal.code in ("invalid_card", "validation_error"):
            raise InvalidCard(
                "The card number must be 12 to 19 digits (spaces or dashes allowed) and pass the Luhn check."
            ) from None
        raise PaymentsRejected(f"Payments refused the authorization ({refusal.code}).") from None
    if payment.order_id != order_id or payment.amount_cents != claim.total_cents:
        # Cannot happen with our own key; if it ever does, the payment never moves the order (and the
        # reconciler voids it as a payment that is not the order's).
        log.error("payment_amount_mismatch", order_id=order_id, payment_id=payment.payment_id)
        raise PaymentsRejected("Payments answered with a payment for another order or amount.")

    async with autocommit(engine) as conn:
        if payment.status == "authorized":
            moved = await repository.mark_authorized(
                conn,
                order_id,
                attempt=attempt,
                payment_id=payment.payment_id,
                amount_cents=payment.amount_cents,
                card_last4=payment.card_last4,
            )
        elif payment.status in ("declined", "voided"):
            moved = await repository.mark_payment_failed(
                conn,
                order_id,
                attempt=attempt,
                failure_code=payment.failure_code or f"payment_{payment.status}",
                card_last4=payment.card_last4,
                payment_id=payment.payment_id,
            )
        else:
            log.warning("payment_not_decided", order_id=order_id, payment_id=payment.payment_id)
            raise PaymentsUnavailable(
                "Payments has not decided the authorization yet; retry shortly.", headers={"Retry-After": "5"}
            )
        order = await _read(conn, order_id)
    if moved:
        outcome = "authorized" if order["status"] == "AUTHORIZED" else order["payment_failure_code"]
        metrics.AUTHORIZATIONS.labels(outcome).inc()
        log.info(
            "order_authorization_recorded",
            order_id=order_id,
            attempt=attempt,
            status=order["status"],
            payment_id=payment.payment_id,
            failure_code=order["payment_failure_code"],
        )
    elif payment.status == "authorized" and order["status"] in CLOSED:
        # Expired or cancelled while the card was being asked: the stock is back on the shelf, so the
        # authorization is released at once (or by the reconciler, if payments cannot be reached now).
        await _void_quietly(payments, order_id, payment.payment_id, kind="closed_while_authorizing")
        if order["status"] == "EXPIRED":
            raise OrderExpired(f"Order {order_id}'s reservation has expired.", order_id=order_id)
        raise OrderNotAuthorizable(
            f"Order {order_id} was cancelled while it was being paid for; the authorization is released.",
            order_id=order_id,
            order_status=order["status"],
        )
    return OrderRead.model_validate(order)


async def _void_quietly(payments: PaymentsClient, order_id: int, payment_id: int, *, kind: str) -> None:
    try:
        await payments.void(payment_id=payment_id, idempotency_key=void_key(order_id, payment_id))
    except (PaymentsUnavailable, PaymentsRejected, PaymentsRefusal) as exc:
        log.warning("payment_void_deferred", order_id=order_id, payment_id=payment_id, error=str(exc))
        return
    metrics.VOIDS.labels(kind).inc()
    log.info("payment_voided", order_id=order_id, payment_id=payment_id, kind=kind)


async def capture_payment(
    engine: AsyncEngine, payments: PaymentsClient, order_id: int, *, budget_s: float
) -> OrderRead:
    """Capture the order's authorization in full: AUTHORIZED → PAID. PAID and REFUNDED answer as they are."""
    async with autocommit(engine) as conn:
        claim = await repository.begin_payments_call(conn, order_id, ("AUTHORIZED",), budget_s=budget_s)
        order = await _read(conn, order_id)
    if claim is None:
        return _capture_refused(order)

    payment_id = claim.payment_id
    if payment_id is None:  # a free order: nothing was authorized, nothing to capture
        captured = 0
    else:
        try:
            payment = await payments.capture(
                payment_id=payment_id, idempotency_key=capture_key(order_id, payment_id)
            )
        except PaymentsRefusal as refusal:
            if refusal.code == "authorization_expired":
                raise AuthorizationExpired(
                    f"Order {order_id}'s card authorization has lapsed; it can no longer be captured.",
                    order_id=order_id,
                ) from None
            if refusal.code == "payment_not_capturable":  # voided: the order was cancelled meanwhile
                async with autocommit(engine) as conn:
                    return _capture_refused(await _read(conn, order_id))
            raise PaymentsRejected(f"Payments refused the capture ({refusal.code}).") from None
        if payment.status not in CAPTURED_STATUSES or payment.captured_cents != claim.total_cents:
            log.error("capture_amount_mismatch", order_id=order_id, payment_id=payment_id)
            raise PaymentsRejected("Payments answered the capture with a payment not captured in full.")
        captured = payment.captured_cents

    async with autocommit(engine) as conn:
        moved = await repository.mark_paid(conn, order_id, payment_id=payment_id, captured_cents=captured)
        order = await _read(conn, order_id)
    if moved:
        metrics.CAPTURES.labels("paid").inc()
        log.info("order_captured", order_id=order_id, payment_id=payment_id, captured_cents=captured)
    elif order["status"] in CLOSED:
        # Cancelled while the capture was made: the money goes back (now, or by the reconciler).
        await _settle_quietly(engine, payments, order_id)
        raise OrderNotCapturable(
            f"Order {order_id} was cancelled while it was being captured; the money is refunded.",
            order_id=order_id,
            order_status=order["status"],
        )
    return OrderRead.model_validate(order)


def _capture_refused(order: dict[str, Any]) -> OrderRead:
    order_id, status = order["id"], order["status"]
    if status in ("PAID", "REFUNDED"):
        return OrderRead.model_validate(order)
    if status in UNSETTLED:
        raise OrderNotAuthorized(
            f"Order {order_id} is {status}: there is no authorized payment to capture.",
            order_id=order_id,
            order_status=status,
        )
    raise OrderNotCapturable(
        f"Order {order_id} is {status} and cannot be captured.", order_id=order_id, order_status=status
    )


async def cancel_order(
    engine: AsyncEngine, payments: PaymentsClient, order_id: int, *, budget_s: float
) -> OrderRead:
    """PENDING, PAYMENT_FAILED, AUTHORIZED or PAID → CANCELLED: stock back exactly once, the authorization
    voided, captured money refunded in full. The order is CANCELLED even when payments cannot be reached;
    the reconciler then finishes the money. Cancelling again is harmless."""
    async with autocommit(engine) as conn:
        moved = await repository.cancel_order(conn, order_id, budget_s=budget_s)
        order = await _read(conn, order_id)
    if not moved:
        if order["status"] != "CANCELLED":
            raise OrderNotCancellable(
                f"Order {order_id} is {order['status']} and cannot be cancelled.",
                order_id=order_id,
                order_status=order["status"],
            )
        return OrderRead.model_validate(order)
    log.info("order_cancelled", order_id=order_id, payment_id=order["payment_id"])
    if order["payment_id"] is None:
        # No payment recorded. One may still be in flight: reconcile_at was set, the reconciler checks.
        return OrderRead.model_validate(order)
    await _settle_quietly(engine, payments, order_id)
    async with autocommit(engine) as conn:
        return OrderRead.model_validate(await _read(conn, order_id))


async def refund_payment(
    engine: AsyncEngine,
    payments: PaymentsClient,
    order_id: int,
    *,
    amount_cents: int,
    reason: str | None,
    client_key: str,
    budget_s: float,
) -> OrderRead:
    """Refund part or all of a PAID order's capture (no restock: a cancel restocks). The sum of refunds never
    exceeds the capture, however many run at once: payments enforces it in one conditional UPDATE."""
    async with autocommit(engine) as conn:
        claim = await repository.begin_payments_call(conn, order_id, ("PAID",), budget_s=budget_s)
        order = await _read(conn, order_id)
    if claim is None:
        raise OrderNotRefundable(
            f"Order {order_id} is {order['status']}: only a PAID order can be refunded.",
            order_id=order_id,
            order_status=order["status"],
        )
    payment_id = claim.payment_id
    if payment_id is None:
        raise RefundExceedsCaptured(
            f"Order {order_id} was free: nothing was captured.", order_id=order_id, refundable_cents=0
        )
    try:
        made = await payments.refund(
            payment_id=payment_id, amount_cents=amount_cents, idempotency_key=refund_key(order_id, client_key)
        )
    except PaymentsRefusal as refusal:
        if refusal.code == "refund_exceeds_captured":
            refundable = refusal.problem.get("refundable_cents")
            raise RefundExceedsCaptured(
                f"Order {order_id} has {refundable} cents left to refund; {amount_cents} asked.",
                order_id=order_id,
                refundable_cents=refundable,
            ) from None
        if refusal.code == "payment_not_refundable":
            raise OrderNotRefundable(
                f"Order {order_id}'s payment cannot be refunded.", order_id=order_id
            ) from None
        raise PaymentsRejected(f"Payments refused the refund ({refusal.code}).") from None
    async with autocommit(engine) as conn:
        await _record_payment(
            conn, order_id, made.payment, refund_id=made.refund_id, reason=reason, key=client_key
        )
        order = await _read(conn, order_id)
    metrics.REFUNDS.labels("requested").inc()
    log.info(
        "order_refunded",
        order_id=order_id,
        refund_id=made.refund_id,
        amount_cents=made.amount_cents,
        status=order["status"],
    )
    return OrderRead.model_validate(order)


async def _record_payment(
    conn: AsyncConnection,
    order_id: int,
    payment: Payment,
    *,
    refund_id: int | None = None,
    reason: str | None = None,
    key: str | None = None,
) -> str | None:
    return await repository.record_payment_state(
        conn,
        order_id,
        payment_id=payment.payment_id,
        captured_cents=payment.captured_cents,
        refunded_cents=payment.refunded_cents,
        refunds=[repository.RefundRecord(r.refund_id, r.amount_cents, r.created_at) for r in payment.refunds],
        refund_id=refund_id,
        reason=reason,
        refund_key=key,
    )


@dataclass
class Settlement:
    """What ``settle_order`` did (``fixes``, by kind), and whether the order now agrees with payments."""

    fixes: list[str] = field(default_factory=list)
    settled: bool = True


async def _settle_quietly(engine: AsyncEngine, payments: PaymentsClient, order_id: int) -> None:
    try:
        await settle_order(engine, payments, order_id)
    except (PaymentsUnavailable, PaymentsRejected, PaymentsRefusal) as exc:
        log.warning("order_settlement_deferred", order_id=order_id, error=str(exc))


async def settle_order(engine: AsyncEngine, payments: PaymentsClient, order_id: int) -> Settlement:
    """Bring the order and its payments into agreement, by asking payments what it holds for the order:

    - PENDING/PAYMENT_FAILED with an authorized payment of exactly the total → AUTHORIZED (a lost answer);
      declines payments decided that orders never recorded are counted;
    - AUTHORIZED whose payment is captured → PAID;
    - CANCELLED/EXPIRED → every authorization voided, every capture refunded in full;
    - PAID/REFUNDED → the order's refunds follow payments';
    - any payment that is not the order's own (another amount, posted by someone else) → voided or refunded;
      it never moves the order.

    Every step is a conditional update or a call under a derived key, so settling twice, or in two
    processes at once, does each thing once. Raises PaymentsUnavailable if payments cannot be asked.
    """
    settlement = Settlement()
    for _ in range(3):  # a void refused because a capture landed meanwhile is a refund next round
        found = await payments.list_for_order(order_id)
        async with autocommit(engine) as conn:
            order = await _read(conn, order_id)
            if order["status"] in UNSETTLED:
                await _apply_lost_authorization(conn, order, found, settlement)
            order = await _read(conn, order_id)
            if order["status"] == "AUTHORIZED":
                own = next((p for p in found if p.payment_id == order["payment_id"]), None)
                if (
                    own is not None
                    and own.status in CAPTURED_STATUSES
                    and await repository.mark_paid(
                        conn, order_id, payment_id=own.payment_id, captured_cents=own.captured_cents
                    )
                ):
                    settlement.fixes.append("capture_applied")
                order = await _read(conn, order_id)
            own = next((p for p in found if p.payment_id == order["payment_id"]), None)
            if own is not None:
                before = (order["captured_cents"], order["refunded_cents"])
                await _record_payment(conn, order_id, own)
                if before != (own.captured_cents, own.refunded_cents):
                    settlement.fixes.append("money_synced")
        keep = order["status"] not in CLOSED
        acted = False
        settlement.settled = True
        for payment in found:
            if payment.status == "pending":
                settlement.settled = False  # payments is still asking the processor: look again later
                continue
            if keep and payment.payment_id == order["payment_id"]:
                continue
            stray = payment.payment_id != order["payment_id"]
            if payment.status == "authorized":
                acted = True
                await _void(payments, order_id, payment, settlement, "stray_voided" if stray else "voided")
            elif payment.refundable_cents > 0:
                acted = True
                await _refund_remainder(payments, order_id, payment, settlement, stray=stray)
        if not acted:
            return settlement
    settlement.settled = False
    return settlement


async def _apply_lost_authorization(
    conn: AsyncConnection, order: dict[str, Any], found: list[Payment], settlement: Settlement
) -> None:
    order_id = order["id"]
    matching = [p for p in found if p.status == "authorized" and p.amount_cents == order["total_cents"]]
    if matching:
        payment = matching[0]
        if await repository.mark_authorized(
            conn,
            order_id,
            attempt=order["payment_attempts"] + 1,
            payment_id=payment.payment_id,
            amount_cents=payment.amount_cents,
            card_last4=payment.card_last4,
        ):
            settlement.fixes.append("authorization_applied")
            metrics.AUTHORIZATIONS.labels("authorized").inc()
        return
    declined = [p for p in found if p.status == "declined"]
    if len(declined) > order["payment_attempts"]:
        last = declined[-1]
        if await repository.mark_payment_failed(
            conn,
            order_id,
            attempt=len(declined),
            failure_code=last.failure_code or "card_declined",
            card_last4=last.card_last4,
            payment_id=last.payment_id,
        ):
            settlement.fixes.append("decline_recorded")


async def _void(
    payments: PaymentsClient, order_id: int, payment: Payment, settlement: Settlement, kind: str
) -> None:
    try:
        await payments.void(
            payment_id=payment.payment_id, idempotency_key=void_key(order_id, payment.payment_id)
        )
    except PaymentsRefusal as refusal:
        # Captured meanwhile (refunded next round), or declined: nothing held.
        log.info("payment_void_refused", order_id=order_id, payment_id=payment.payment_id, code=refusal.code)
        return
    settlement.fixes.append(kind)
    metrics.VOIDS.labels(kind).inc()
    log.info("payment_voided", order_id=order_id, payment_id=payment.payment_id, kind=kind)


async def _refund_remainder(
    payments: PaymentsClient, order_id: int, payment: Payment, settlement: Settlement, *, stray: bool
) -> None:
    key = cancel_refund_key(order_id, payment.payment_id, payment.refunded_cents)
    try:
        made = await payments.refund(
            payment_id=payment.payment_id, amount_cents=payment.refundable_cents, idempotency_key=key
        )
    except PaymentsRefusal as refusal:  # another refund landed in between: next round sees the new remainder
        log.info(
            "payment_refund_refused", order_id=order_id, payment_id=payment.payment_id, code=refusal.code
        )
        return
    kind = "stray_refunded" if stray else "refunded"
    settlement.fixes.append(kind)
    metrics.REFUNDS.labels("cancel").inc()
    log.info(
        "payment_refunded",
        order_id=order_id,
        payment_id=payment.payment_id,
        refund_id=made.refund_id,
        amount_cents=made.amount_cents,
        kind=kind,
    )
