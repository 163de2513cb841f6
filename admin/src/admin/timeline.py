"""An order's payment timeline, as the admin reads it: what happened to the money and the stock, in order.

Built from what the gateway tells the admin: the order's own fields (placed, cancelled, expired), its
payments at the payments service (authorized, declined, captured, voided) and its refunds (with reasons).
"""

from dataclasses import dataclass
from datetime import datetime

from admin.gateway import Order, Payment


@dataclass(frozen=True)
class Event:
    kind: str  # placed | authorized | declined | pending | captured | voided | refunded | cancelled | expired
    title: str
    amount_cents: int | None = None
    detail: str | None = None
    at: datetime | None = None


def _card(brand: str | None, last4: str | None) -> str | None:
    if not last4:
        return None
    return f"{(brand or 'card').capitalize()} ending {last4}"


def _humanize(code: str) -> str:
    return code.replace("_", " ")


def _payment_events(payment: Payment) -> list[Event]:
    card = _card(payment.card_brand, payment.card_last4)
    if payment.status == "declined":
        reason = _humanize(payment.failure_code or "declined")
        detail = f"{reason} · {card}" if card else reason
        return [Event("declined", "Card declined", payment.amount_cents, detail, payment.created_at)]
    if payment.status == "pending":
        return [Event("pending", "Authorization asked for", payment.amount_cents, card, payment.created_at)]
    events = [Event("authorized", "Authorized", payment.amount_cents, card, payment.created_at)]
    if payment.captured_cents:
        # Payments keeps no capture time of its own: the capture sits after its authorization.
        events.append(Event("captured", "Captured", payment.captured_cents, f"payment #{payment.id}"))
    if payment.status == "voided":
        events.append(
            Event(
                "voided", "Authorization voided", payment.amount_cents, "nothing charged", payment.updated_at
            )
        )
    return events


def _events_from_order_fields(order: Order) -> list[Event]:
    """When the gateway gave no payments: what the order itself says about its money."""
    card = _card(None, order.card_last4)
    events: list[Event] = []
    if order.payment_failure_code and order.status == "PAYMENT_FAILED":
        events.append(
            Event("declined", "Card declined", order.total_cents, _humanize(order.payment_failure_code))
        )
    if order.authorized_cents:
        events.append(Event("authorized", "Authorized", order.authorized_cents, card))
    if order.captured_cents:
        events.append(Event("captured", "Captured", order.captured_cents))
    return events


def payment_timeline(order: Order) -> list[Event]:
    """The order's events, oldest first. An event without a time of its own sorts right after the one
    before it."""
    events = [
        Event(
            "placed",
            "Order placed",
            order.total_cents,
            "stock reserved" if order.status in ("PENDING", "PAYMENT_FAILED") else None,
            order.created_at,
        )
    ]
    if order.payments:
        for payment in order.payments:
            events.extend(_payment_events(payment))
    else:
        events.extend(_events_from_order_fields(order))
    refunds = sorted(order.refunds, key=lambda refund: refund.created_at)
    # Only the admin's refunds carry a reason; the one a cancel makes has none.
    unexplained = "on cancellation" if order.status == "CANCELLED" else None
    events.extend(
        Event("refunded", "Refunded", r.amount_cents, r.reason or unexplained, r.created_at) for r in refunds
    )
    listed = sum(refund.amount_cents for refund in refunds)
    refunded = max(order.refunded_cents, sum(p.refunded_cents for p in order.payments))
    if refunded > listed:
        why = "on cancellation" if order.status == "CANCELLED" else "recorded by payments"
        events.append(Event("refunded", "Refunded", refunded - listed, why, order.updated_at))
    if order.status == "CANCELLED":
        events.append(Event("cancelled", "Order cancelled", None, "stock returned", order.updated_at))
    elif order.status == "EXPIRED":
        events.append(
            Event("expired", "Reservation expired", None, "stock returned, nothing charged", order.updated_at)
        )
    return _in_time_order(events, order.created_at)


def _in_time_order(events: list[Event], start: datetime) -> list[Event]:
    keyed: list[tuple[datetime, int, Event]] = []
    last = start
    for position, event in enumerate(events):
        last = event.at or last
        keyed.append((last, position, event))
    keyed.sort(key=lambda item: (item[0], item[1]))
    return [event for _, _, event in keyed]
