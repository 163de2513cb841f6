"""The payment timeline on the admin's order page, built from the order, its payments and its refunds."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from admin.gateway import Order, Payment, Refund
from admin.timeline import payment_timeline

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def order(status: str, **fields: object) -> Order:
    base = Order(
        id="7",
        status=status,  # type: ignore[arg-type]
        total_cents=2500,
        payment_failure_code=None,
        payment_attempts=0,
        created_at=at(0),
        updated_at=at(0),
        expires_at=None,
        authorized_cents=0,
        captured_cents=0,
        refunded_cents=0,
        card_last4=None,
        customer=None,
        items=[],
        refunds=[],
        payments=[],
    )
    return base.model_copy(update=fields)


def payment(
    status: str, *, captured: int = 0, refunded: int = 0, created: int = 1, updated: int = 1, **extra: object
) -> Payment:
    return Payment(
        id="3",
        status=status,
        amount_cents=2500,
        captured_cents=captured,
        refunded_cents=refunded,
        card_brand="visa",
        card_last4="4242",
        failure_code=extra.get("failure_code"),  # type: ignore[arg-type]
        created_at=at(created),
        updated_at=at(updated),
    )


def kinds(o: Order) -> list[str]:
    return [event.kind for event in payment_timeline(o)]


def test_a_decline_then_an_authorization_then_a_capture_and_two_refunds() -> None:
    paid = order(
        "PAID",
        payments=[
            payment("declined", failure_code="insufficient_funds", created=1),
            payment("partially_refunded", captured=2500, refunded=1000, created=2, updated=9),
        ],
        refunds=[
            Refund(id="2", amount_cents=400, reason="late", created_at=at(8)),
            Refund(id="1", amount_cents=600, reason="dented lid", created_at=at(5)),
        ],
        captured_cents=2500,
        refunded_cents=1000,
    )
    events = payment_timeline(paid)
    assert [e.kind for e in events] == [
        "placed",
        "declined",
        "authorized",
        "captured",
        "refunded",
        "refunded",
    ]
    assert events[1].detail == "insufficient funds · Visa ending 4242"
    assert [(e.amount_cents, e.detail) for e in events[-2:]] == [(600, "dented lid"), (400, "late")]


def test_cancelling_an_authorized_order_voids_after_the_cancel() -> None:
    cancelled = order("CANCELLED", updated_at=at(5), payments=[payment("voided", created=1, updated=6)])
    assert kinds(cancelled) == ["placed", "authorized", "cancelled", "voided"]


def test_a_cancel_refund_that_is_not_in_the_refund_list_still_shows() -> None:
    cancelled = order(
        "CANCELLED",
        updated_at=at(5),
        captured_cents=2500,
        refunded_cents=2500,
        payments=[payment("refunded", captured=2500, refunded=2500)],
    )
    events = payment_timeline(cancelled)
    assert [e.kind for e in events] == ["placed", "authorized", "captured", "refunded", "cancelled"]
    assert (events[3].amount_cents, events[3].detail) == (2500, "on cancellation")


def test_the_refund_a_cancel_makes_says_so_when_it_has_no_reason() -> None:
    cancelled = order(
        "CANCELLED",
        updated_at=at(5),
        captured_cents=2500,
        refunded_cents=2500,
        payments=[payment("refunded", captured=2500, refunded=2500)],
        refunds=[Refund(id="1", amount_cents=2500, reason=None, created_at=at(5))],
    )
    refunds = [e for e in payment_timeline(cancelled) if e.kind == "refunded"]
    assert [(e.amount_cents, e.detail) for e in refunds] == [(2500, "on cancellation")]


def test_an_expired_reservation_ends_the_timeline() -> None:
    expired = order(
        "EXPIRED",
        updated_at=at(900),
        payment_failure_code="card_declined",
        payments=[payment("declined", failure_code="card_declined")],
    )
    assert kinds(expired) == ["placed", "declined", "expired"]


def test_without_payments_the_orders_own_fields_tell_the_story() -> None:
    authorized = order("AUTHORIZED", authorized_cents=2500, card_last4="4242")
    events = payment_timeline(authorized)
    assert [(e.kind, e.amount_cents, e.detail) for e in events] == [
        ("placed", 2500, None),
        ("authorized", 2500, "Card ending 4242"),
    ]


def test_a_pending_authorization_shows_as_asked_for_with_its_card() -> None:
    events = payment_timeline(order("PENDING", payments=[payment("pending")]))
    assert [(e.kind, e.title, e.detail) for e in events] == [
        ("placed", "Order placed", "stock reserved"),
        ("pending", "Authorization asked for", "Visa ending 4242"),
    ]


def test_without_payments_a_declined_order_says_why_in_words() -> None:
    declined = order("PAYMENT_FAILED", payment_failure_code="insufficient_funds")
    assert [(e.kind, e.amount_cents, e.detail) for e in payment_timeline(declined)] == [
        ("placed", 2500, "stock reserved"),
        ("declined", 2500, "insufficient funds"),
    ]


def test_without_payments_a_captured_order_shows_its_authorization_and_capture() -> None:
    paid = order("PAID", authorized_cents=2500, captured_cents=2500)
    events = payment_timeline(paid)
    assert [(e.kind, e.amount_cents) for e in events] == [
        ("placed", 2500),
        ("authorized", 2500),
        ("captured", 2500),
    ]
    assert events[1].detail is None  # no card on file, no card named


def test_money_refunded_beyond_the_listed_refunds_is_shown_as_recorded_by_payments() -> None:
    paid = order(
        "PAID",
        updated_at=at(20),
        captured_cents=2500,
        refunded_cents=1000,
        payments=[payment("partially_refunded", captured=2500, refunded=1000)],
        refunds=[Refund(id="1", amount_cents=600, reason="dented lid", created_at=at(10))],
    )
    refunds = [(e.amount_cents, e.detail) for e in payment_timeline(paid) if e.kind == "refunded"]
    assert refunds == [(600, "dented lid"), (400, "recorded by payments")]
    assert sum(amount for amount, _ in refunds if amount) == 1000  # never more, never less than refunded


@given(
    st.lists(
        st.tuples(st.integers(min_value=1, max_value=2500), st.integers(min_value=1, max_value=10_000)),
        max_size=6,
    )
)
def test_refunds_appear_oldest_first_after_the_order_and_add_up_to_what_was_refunded(
    refunds: list[tuple[int, int]],
) -> None:
    listed = [
        Refund(id=str(n), amount_cents=amount, reason=f"r{n}", created_at=at(seconds))
        for n, (amount, seconds) in enumerate(refunds)
    ]
    total = sum(amount for amount, _ in refunds)
    paid = order(
        "PAID",
        updated_at=at(10_001),
        captured_cents=2500,
        refunded_cents=total,
        payments=[payment("refunded", captured=2500, refunded=total)],
        refunds=listed,
    )
    events = payment_timeline(paid)
    assert events[0].kind == "placed"
    shown = [e for e in events if e.kind == "refunded"]
    assert [e.at for e in shown] == sorted(r.created_at for r in listed)
    assert sum(e.amount_cents or 0 for e in shown) == total
    assert all(e.detail != "recorded by payments" for e in shown)  # every cent is a listed refund
