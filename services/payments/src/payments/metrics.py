"""Payments' business metrics (served at /metrics next to the HTTP metrics)."""

from prometheus_client import Counter

AUTHORIZATIONS = Counter(
    "lockstock_payment_authorizations",
    "Authorizations decided by the processor, by outcome: authorized, or the decline code "
    "(card_declined, insufficient_funds).",
    ["outcome"],
)
for _outcome in ("authorized", "card_declined", "insufficient_funds"):
    AUTHORIZATIONS.labels(_outcome)

CAPTURES = Counter("lockstock_payment_captures", "Authorizations captured (each for its full amount).")
VOIDS = Counter("lockstock_payment_voids", "Authorizations voided (released without taking money).")
REFUNDS = Counter("lockstock_payment_refunds", "Refunds made by the processor.")
REFUNDED_CENTS = Counter("lockstock_payment_refunded_cents", "Cents given back by refunds.")
RESUMED = Counter(
    "lockstock_payment_operations_resumed",
    "Captures, voids and refunds whose request died, finished by the service's own periodic pass.",
    ["operation"],
)
for _operation in ("capture", "void", "refund"):
    RESUMED.labels(_operation)
