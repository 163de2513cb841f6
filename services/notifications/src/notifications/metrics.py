"""The worker's metrics (served at /metrics next to the HTTP metrics)."""

from prometheus_client import Counter, Gauge, Histogram

CONSUMERS = ("email", "webhooks", "alerts", "sales")

EVENTS = Counter(
    "lockstock_events_consumed",
    "Outbox events handled by a consumer, by outcome: done, retrying (an attempt failed, it will be "
    "retried) or failed (given up, or an event that does not fit the catalogue).",
    ["consumer", "outcome"],
)
EVENT_LAG = Histogram(
    "lockstock_event_lag_seconds",
    "Time from an event's commit in the outbox to its consumer's effect.",
    ["consumer"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
)
OLDEST_PENDING = Gauge(
    "lockstock_event_oldest_pending_seconds",
    "Age of the oldest event not yet handled, per consumer ('dispatch': not yet fanned out to consumers).",
    ["consumer"],
)
WEBHOOK_DELIVERIES = Counter(
    "lockstock_webhook_delivery_attempts",
    "Webhook delivery attempts, by outcome: succeeded, retrying (will be retried on the schedule) or "
    "failed (the schedule is exhausted).",
    ["outcome"],
)
EMAILS = Counter("lockstock_emails_sent", "Emails accepted by the SMTP server, by kind.", ["kind"])
ALERTS = Counter("lockstock_low_stock_alerts", "Low-stock alerts opened or closed.", ["change"])
NATS_PUBLISHED = Counter("lockstock_nats_events_published", "Outbox events acknowledged by JetStream.")
EVENTS_PRUNED = Counter(
    "lockstock_outbox_events_pruned", "Finished outbox events deleted after the retention (with their jobs)."
)
WORKER_ERRORS = Counter(
    "lockstock_worker_errors", "Worker loop iterations that failed (database or broker down)."
)

for _consumer in CONSUMERS:
    OLDEST_PENDING.labels(_consumer)
    for _outcome in ("done", "retrying", "failed"):
        EVENTS.labels(_consumer, _outcome)
OLDEST_PENDING.labels("dispatch")
for _outcome in ("succeeded", "retrying", "failed"):
    WEBHOOK_DELIVERIES.labels(_outcome)
for _change in ("opened", "closed"):
    ALERTS.labels(_change)
