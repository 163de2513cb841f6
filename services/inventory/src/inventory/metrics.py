"""Inventory's business metrics (process-wide registry; served at /metrics next to the HTTP metrics)."""

from prometheus_client import Counter

STOCK_CHANGES = Counter(
    "lockstock_inventory_stock_changes",
    "Stock levels changed by hand (PATCH /products/{id}/stock), by kind: set (an absolute level) or delta.",
    ["kind"],
)
STOCK_CHANGES_REFUSED = Counter(
    "lockstock_inventory_stock_changes_refused",
    "Stock changes refused because they would take stock below zero.",
)
for _kind in ("set", "delta"):
    STOCK_CHANGES.labels(_kind)
