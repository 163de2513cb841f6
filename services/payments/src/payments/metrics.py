"""Payments' business metrics (served at /metrics next to the HTTP metrics)."""

from prometheus_client import Counter

CHARGES = Counter(
    "lockstock_charges",
    "Charges decided by the processor, by outcome: succeeded, or the decline code (card_declined, …).",
    ["outcome"],
)
CHARGES.labels("succeeded")
