"""Orders' business metrics (process-wide registry; served at /metrics next to the HTTP metrics)."""

from prometheus_client import Counter, Histogram

ORDERS_PLACED = Counter("lockstock_orders_placed", "Orders placed (stock taken, order PENDING).")
ORDERS_REFUSED = Counter(
    "lockstock_orders_refused",
    "Orders refused with nothing written, by reason (insufficient_stock, unknown_product, invalid_quantity).",
    ["reason"],
)
UNITS_SOLD = Counter("lockstock_order_units_sold", "Units of stock taken by placed orders.")
# Seconds the order statement spent before its verdict: almost all of it waiting for the product row locks
# (measured inside the one statement, clock_timestamp() - statement_timestamp(), so no extra round trip).
LOCK_WAIT = Histogram(
    "lockstock_order_lock_wait_seconds",
    "Time the order transaction waited for its product row locks.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)

# ORDERS_PLACEMENT=batched: how many orders each statement decided (1 whenever the database keeps up).
ORDER_BATCH_SIZE = Histogram(
    "lockstock_order_batch_size",
    "Orders decided together in one statement and one commit (group commit).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)

REFUSAL_REASONS = ("insufficient_stock", "unknown_product", "invalid_quantity")
for _reason in REFUSAL_REASONS:  # every reason is a series from the start (0), so rates and panels show it
    ORDERS_REFUSED.labels(_reason)

# The money lifecycle (ADR 0004). Each counts the transitions this process made happen.
AUTHORIZATIONS = Counter(
    "lockstock_order_authorizations",
    "Card authorizations recorded on an order, by outcome: authorized, a decline code (card_declined, …), "
    "or refused (invalid card, payments refused the request).",
    ["outcome"],
)
CAPTURES = Counter(
    "lockstock_order_captures", "Authorizations captured (AUTHORIZED → PAID), by outcome.", ["outcome"]
)
VOIDS = Counter(
    "lockstock_order_voids",
    "Authorizations voided by orders, by kind: voided (a cancelled or expired order's), "
    "closed_while_authorizing, stray_voided (a payment that is not the order's).",
    ["kind"],
)
REFUNDS = Counter(
    "lockstock_order_refunds",
    "Refunds made, by kind: requested (POST /orders/{id}/refunds) or cancel (the remainder of a cancelled "
    "order's capture).",
    ["kind"],
)
EXPIRIES = Counter("lockstock_order_expiries", "Reservations expired by the sweeper (stock given back).")
RECONCILER_FIXES = Counter(
    "lockstock_order_reconciler_fixes",
    "Gaps the reconciler closed, by kind: authorization_applied, decline_recorded, capture_applied, "
    "money_synced, voided, refunded, stray_voided, stray_refunded.",
    ["kind"],
)
RECONCILE_FIX_KINDS = (
    "authorization_applied",
    "decline_recorded",
    "capture_applied",
    "money_synced",
    "voided",
    "refunded",
    "stray_voided",
    "stray_refunded",
)
for _kind in RECONCILE_FIX_KINDS:
    RECONCILER_FIXES.labels(_kind)
CAPTURES.labels("paid")
