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

REFUSAL_REASONS = ("insufficient_stock", "unknown_product", "invalid_quantity")
for _reason in REFUSAL_REASONS:  # every reason is a series from the start (0), so rates and panels show it
    ORDERS_REFUSED.labels(_reason)

CAPTURES = Counter(
    "lockstock_order_captures",
    "Payment captures that moved an order, by outcome: paid, or the decline code (card_declined, …).",
    ["outcome"],
)


def capture_outcome(status: str, failure_code: str | None) -> str:
    return "paid" if status == "PAID" else (failure_code or "declined")
