"""The SQL of the outbox worker and its API. Every claim is ``FOR UPDATE SKIP LOCKED`` plus a lease, so
several workers share the work; an item is claimable only when no earlier item of the same aggregate is
still pending (per consumer, or per webhook endpoint), so each order's events take effect in order."""

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

EVENT_COLUMNS = (
    "e.id AS pk, e.event_id, e.type, e.version, e.aggregate, e.aggregate_id, e.occurred_at, e.data"
)


def _rows(result: Any) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in result]


def _row(result: Any) -> dict[str, Any] | None:
    row = result.first()
    return dict(row._mapping) if row is not None else None


# --- dispatch: outbox events -> one job per interested consumer --------------------------------------------


async def dispatch(conn: AsyncConnection, routes: Sequence[tuple[str, str]], limit: int) -> int:
    """Fan the oldest undispatched events out to their consumers' jobs; returns how many events.

    One dispatcher at a time (a transaction-level advisory lock): events then reach the jobs in id order,
    and for one aggregate id order is commit order (its producers update the aggregate's row, and so queue
    behind each other, in the statement that writes the event)."""
    await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('notifications.dispatch'))"))
    result = await conn.execute(
        text(
            """
            WITH batch AS (
                SELECT id FROM outbox.events WHERE dispatched_at IS NULL ORDER BY id LIMIT :limit
            ), marked AS (
                UPDATE outbox.events e SET dispatched_at = now() FROM batch WHERE e.id = batch.id
                RETURNING e.id, e.event_id, e.type, e.aggregate, e.aggregate_id
            ), jobs AS (
                INSERT INTO notifications.jobs (consumer, event_pk, event_id, type, aggregate, aggregate_id)
                SELECT r.consumer, m.id, m.event_id, m.type, m.aggregate, m.aggregate_id
                  FROM marked m
                  JOIN unnest(CAST(:consumers AS text[]), CAST(:types AS text[])) AS r (consumer, type)
                    ON r.type = m.type OR r.type = '*'
                ON CONFLICT (consumer, event_id) DO NOTHING
            )
            SELECT count(*) FROM marked
            """
        ),
        {"limit": limit, "consumers": [c for c, _ in routes], "types": [t for _, t in routes]},
    )
    return int(result.scalar_one())


# --- jobs ---------------------------------------------------------------------------------------------------


async def claim_jobs(
    conn: AsyncConnection, consumer: str, *, now: datetime, worker: str, lease_s: float, limit: int
) -> list[dict[str, Any]]:
    """Lease up to ``limit`` due jobs of ``consumer``, each with its event, oldest first."""
    result = await conn.execute(
        text(
            f"""
            WITH claimed AS (
                UPDATE notifications.jobs j
                   SET locked_until = now() + make_interval(secs => :lease_s), locked_by = :worker,
                       attempts = attempts + 1
                 WHERE j.id IN (
                    SELECT c.id FROM notifications.jobs c
                     WHERE c.consumer = :consumer AND c.state = 'pending' AND c.run_at <= :now
                       AND (c.locked_until IS NULL OR c.locked_until < now())
                       AND NOT EXISTS (
                           SELECT 1 FROM notifications.jobs p
                            WHERE p.consumer = c.consumer AND p.aggregate = c.aggregate
                              AND p.aggregate_id = c.aggregate_id AND p.event_pk < c.event_pk
                              AND p.state = 'pending')
                     ORDER BY c.event_pk
                     LIMIT :limit
                     FOR UPDATE SKIP LOCKED)
                RETURNING j.id, j.event_pk, j.attempts
            )
            SELECT claimed.id AS job_id, claimed.attempts, {EVENT_COLUMNS}
              FROM claimed JOIN outbox.events e ON e.id = claimed.event_pk
             ORDER BY e.id
            """
        ),
        {"consumer": consumer, "now": now, "worker": worker, "lease_s": lease_s, "limit": limit},
    )
    return _rows(result)


async def complete_job(conn: AsyncConnection, job_id: int, *, state: str, effect: str) -> bool:
    """Mark the job done (or failed); False when it was settled already (by a worker that took over an
    expired lease): the caller's transaction must then apply no effect."""
    result = await conn.execute(
        text(
            """
            UPDATE notifications.jobs
               SET state = :state, effect = :effect, done_at = clock_timestamp(), locked_until = NULL
             WHERE id = :id AND state = 'pending'
            RETURNING id
            """
        ),
        {"id": job_id, "state": state, "effect": effect},
    )
    return result.first() is not None


async def retry_job(conn: AsyncConnection, job_id: int, *, run_at: datetime, error: str) -> None:
    await conn.execute(
        text(
            """
            UPDATE notifications.jobs SET run_at = :run_at, locked_until = NULL, last_error = :error
             WHERE id = :id AND state = 'pending'
            """
        ),
        {"id": job_id, "run_at": run_at, "error": error[:1000]},
    )


async def enqueue_job(conn: AsyncConnection, consumer: str, event: Any) -> None:
    """A job that another consumer's effect calls for (an opened alert asks for its email), in that
    effect's transaction."""
    await conn.execute(
        text(
            """
            INSERT INTO notifications.jobs (consumer, event_pk, event_id, type, aggregate, aggregate_id)
            VALUES (:consumer, :pk, :event_id, :type, :aggregate, :aggregate_id)
            ON CONFLICT (consumer, event_id) DO NOTHING
            """
        ),
        {
            "consumer": consumer,
            "pk": event.pk,
            "event_id": event.event_id,
            "type": event.type,
            "aggregate": event.aggregate,
            "aggregate_id": event.aggregate_id,
        },
    )


async def release_jobs(conn: AsyncConnection, job_ids: Sequence[int], worker: str) -> None:
    """Give back claimed jobs this worker will not get to (the claim's attempt is not counted)."""
    await conn.execute(
        text(
            """
            UPDATE notifications.jobs SET locked_until = NULL, attempts = attempts - 1
             WHERE id = ANY (:ids) AND state = 'pending' AND locked_by = :worker
            """
        ),
        {"ids": list(job_ids), "worker": worker},
    )


async def oldest_pending(conn: AsyncConnection) -> dict[str, float]:
    """Seconds since the oldest unhandled event occurred, per consumer, and 'dispatch' for the outbox."""
    result = await conn.execute(
        text(
            """
            SELECT 'dispatch' AS consumer,
                   coalesce(extract(epoch FROM now() - min(occurred_at)), 0)::float8 AS age
              FROM outbox.events WHERE dispatched_at IS NULL
            UNION ALL
            SELECT j.consumer, coalesce(extract(epoch FROM now() - min(e.occurred_at)), 0)::float8
              FROM notifications.jobs j JOIN outbox.events e ON e.id = j.event_pk
             WHERE j.state = 'pending' GROUP BY j.consumer
            """
        )
    )
    return {row.consumer: row.age for row in result}


# --- pruning -----------------------------------------------------------------------------------------------


async def prune_events(
    conn: AsyncConnection, *, retention_s: float, limit: int, require_published: bool
) -> int:
    """Delete up to ``limit`` events that occurred more than ``retention_s`` ago (by the database's clock,
    not the worker's injectable one) and that every consumer has finished:
    dispatched, no job or webhook delivery of theirs pending (done or failed are finished), and published
    when the relay is on; with their jobs, deliveries and attempts (which reference them). Returns how many.

    Oldest first along events_dispatched; SKIP LOCKED, so workers pruning at once take different events.
    The deletes of jobs and deliveries skip any that turned pending meanwhile (a redelivery): the event's
    delete then fails its foreign key and the whole statement with it, and the next pass no longer picks
    that event. So an event some consumer still has work for is never deleted."""
    result = await conn.execute(
        text(
            """
            WITH doomed AS MATERIALIZED (
                SELECT e.id FROM outbox.events AS e
                 WHERE e.dispatched_at IS NOT NULL
                   AND e.occurred_at < now() - make_interval(secs => CAST(:retention_s AS float8))
                   AND (NOT CAST(:require_published AS boolean) OR e.published_at IS NOT NULL)
                   AND NOT EXISTS (SELECT 1 FROM notifications.jobs AS j
                                    WHERE j.event_pk = e.id AND j.state = 'pending')
                   AND NOT EXISTS (SELECT 1 FROM notifications.webhook_deliveries AS d
                                    WHERE d.event_pk = e.id AND d.status = 'pending')
                 ORDER BY e.occurred_at, e.id
                 LIMIT :limit
                   FOR UPDATE SKIP LOCKED
            ),
            attempts AS (
                DELETE FROM notifications.webhook_attempts AS a
                 USING notifications.webhook_deliveries AS d, doomed
                 WHERE a.delivery_id = d.id AND d.event_pk = doomed.id AND d.status <> 'pending'
            ),
            deliveries AS (
                DELETE FROM notifications.webhook_deliveries AS d USING doomed
                 WHERE d.event_pk = doomed.id AND d.status <> 'pending'
            ),
            jobs AS (
                DELETE FROM notifications.jobs AS j USING doomed
                 WHERE j.event_pk = doomed.id AND j.state <> 'pending'
            ),
            pruned AS (
                DELETE FROM outbox.events AS e USING doomed WHERE e.id = doomed.id RETURNING e.id
            )
            SELECT count(*) FROM pruned
            """
        ),
        {"retention_s": retention_s, "limit": limit, "require_published": require_published},
    )
    return int(result.scalar_one())


# --- emails ------------------------------------------------------------------------------------------------


async def record_email(conn: AsyncConnection, event_id: UUID, email: Any) -> None:
    await conn.execute(
        text(
            """
            INSERT INTO notifications.emails
                   (event_id, message_id, kind, to_address, subject, text_body, html_body)
            VALUES (:event_id, :message_id, :kind, :to_address, :subject, :text_body, :html_body)
            ON CONFLICT (event_id) DO NOTHING
            """
        ),
        {
            "event_id": event_id,
            "message_id": email.message_id,
            "kind": email.kind,
            "to_address": email.to_address,
            "subject": email.subject,
            "text_body": email.text_body,
            "html_body": email.html_body,
        },
    )


async def list_emails(conn: AsyncConnection, limit: int, before_id: int | None) -> list[dict[str, Any]]:
    result = await conn.execute(
        text(
            """
            SELECT id, event_id, message_id, kind, to_address, subject, text_body, html_body, sent_at
              FROM notifications.emails
             WHERE CAST(:before AS bigint) IS NULL OR id < :before
             ORDER BY id DESC LIMIT :limit
            """
        ),
        {"limit": limit, "before": before_id},
    )
    return _rows(result)


# --- webhooks ----------------------------------------------------------------------------------------------

ENDPOINT_COLUMNS = "id, url, event_types, description, created_at"


async def create_endpoint(
    conn: AsyncConnection, *, url: str, event_types: list[str], description: str, secret: str
) -> dict[str, Any]:
    result = await conn.execute(
        text(
            f"""
            INSERT INTO notifications.webhook_endpoints (url, event_types, description, secret)
            VALUES (:url, :event_types, :description, :secret)
            RETURNING {ENDPOINT_COLUMNS}, secret
            """
        ),
        {"url": url, "event_types": event_types, "description": description, "secret": secret},
    )
    row = _row(result)
    assert row is not None
    return row


async def list_endpoints(conn: AsyncConnection) -> list[dict[str, Any]]:
    result = await conn.execute(
        text(
            f"SELECT {ENDPOINT_COLUMNS} FROM notifications.webhook_endpoints"
            " WHERE deleted_at IS NULL ORDER BY id"
        )
    )
    return _rows(result)


async def get_endpoint(conn: AsyncConnection, endpoint_id: int) -> dict[str, Any] | None:
    result = await conn.execute(
        text(f"SELECT {ENDPOINT_COLUMNS}, deleted_at FROM notifications.webhook_endpoints WHERE id = :id"),
        {"id": endpoint_id},
    )
    return _row(result)


async def delete_endpoint(conn: AsyncConnection, endpoint_id: int) -> bool:
    """Disable the endpoint (its log stays) and fail what it still had pending."""
    result = await conn.execute(
        text(
            """
            UPDATE notifications.webhook_endpoints SET deleted_at = now()
             WHERE id = :id AND deleted_at IS NULL RETURNING id
            """
        ),
        {"id": endpoint_id},
    )
    if result.first() is None:
        return False
    await conn.execute(
        text(
            """
            UPDATE notifications.webhook_deliveries
               SET status = 'failed', last_error = 'endpoint deleted', completed_at = now(),
                   updated_at = now()
             WHERE endpoint_id = :id AND status = 'pending'
            """
        ),
        {"id": endpoint_id},
    )
    return True


async def create_deliveries(conn: AsyncConnection, event: Any, *, now: datetime) -> int:
    """One delivery per live endpoint subscribed to the event's type; returns how many."""
    result = await conn.execute(
        text(
            """
            INSERT INTO notifications.webhook_deliveries
                   (endpoint_id, event_pk, event_id, type, aggregate, aggregate_id, next_attempt_at)
            SELECT id, :pk, :event_id, :type, :aggregate, :aggregate_id, :now
              FROM notifications.webhook_endpoints
             WHERE deleted_at IS NULL AND (:type = ANY (event_types) OR '*' = ANY (event_types))
            ON CONFLICT (endpoint_id, event_id) DO NOTHING
            RETURNING id
            """
        ),
        {
            "pk": event.pk,
            "event_id": event.event_id,
            "type": event.type,
            "aggregate": event.aggregate,
            "aggregate_id": event.aggregate_id,
            "now": now,
        },
    )
    return len(result.all())


DELIVERY_COLUMNS = """
    d.id, d.endpoint_id, d.event_id, d.type, d.status, d.attempts, d.failures, d.next_attempt_at,
    d.last_response_code, d.last_error, d.created_at, d.updated_at, d.completed_at
"""


async def claim_deliveries(
    conn: AsyncConnection, *, now: datetime, lease_s: float, limit: int
) -> list[dict[str, Any]]:
    """Lease due deliveries, each with its endpoint's URL and secret and its event. A delivery waits for
    every earlier pending delivery of the same aggregate to the same endpoint."""
    result = await conn.execute(
        text(
            f"""
            WITH claimed AS (
                UPDATE notifications.webhook_deliveries d
                   SET locked_until = now() + make_interval(secs => :lease_s)
                 WHERE d.id IN (
                    SELECT c.id FROM notifications.webhook_deliveries c
                     WHERE c.status = 'pending' AND c.next_attempt_at <= :now
                       AND (c.locked_until IS NULL OR c.locked_until < now())
                       AND NOT EXISTS (
                           SELECT 1 FROM notifications.webhook_deliveries p
                            WHERE p.endpoint_id = c.endpoint_id AND p.aggregate = c.aggregate
                              AND p.aggregate_id = c.aggregate_id AND p.event_pk < c.event_pk
                              AND p.status = 'pending')
                     ORDER BY c.event_pk
                     LIMIT :limit
                     FOR UPDATE SKIP LOCKED)
                RETURNING d.*
            )
            SELECT d.id AS delivery_id, d.attempts, d.failures, w.url, w.secret,
                   w.deleted_at IS NOT NULL AS endpoint_deleted, {EVENT_COLUMNS}
              FROM claimed d
              JOIN notifications.webhook_endpoints w ON w.id = d.endpoint_id
              JOIN outbox.events e ON e.id = d.event_pk
             ORDER BY e.id
            """
        ),
        {"now": now, "lease_s": lease_s, "limit": limit},
    )
    return _rows(result)


async def record_attempt(
    conn: AsyncConnection,
    delivery_id: int,
    *,
    seen_attempts: int,
    attempted_at: datetime,
    outcome: str,
    next_attempt_at: datetime | None,
    response_code: int | None,
    error: str | None,
    duration_ms: int,
) -> bool:
    """Record one attempt and move the delivery on; False when another worker recorded this attempt."""
    result = await conn.execute(
        text(
            """
            WITH moved AS (
                UPDATE notifications.webhook_deliveries
                   SET attempts = attempts + 1,
                       failures = CASE WHEN :outcome = 'succeeded' THEN 0 ELSE failures + 1 END,
                       status = CASE :outcome WHEN 'retrying' THEN 'pending' ELSE :outcome END,
                       next_attempt_at = coalesce(CAST(:next_attempt_at AS timestamptz), next_attempt_at),
                       last_response_code = CAST(:response_code AS integer),
                       last_error = CAST(:error AS text),
                       locked_until = NULL, updated_at = :attempted_at,
                       completed_at = CASE WHEN :outcome = 'retrying' THEN NULL
                                           ELSE CAST(:attempted_at AS timestamptz) END
                 WHERE id = :id AND status = 'pending' AND attempts = :seen_attempts
                RETURNING id, attempts
            )
            INSERT INTO notifications.webhook_attempts
                   (delivery_id, attempt, attempted_at, duration_ms, response_code, error, outcome)
            SELECT id, attempts, :attempted_at, :duration_ms, :response_code, :error, :outcome FROM moved
            RETURNING id
            """
        ),
        {
            "id": delivery_id,
            "seen_attempts": seen_attempts,
            "attempted_at": attempted_at,
            "outcome": outcome,
            "next_attempt_at": next_attempt_at,
            "response_code": response_code,
            "error": error,
            "duration_ms": duration_ms,
        },
    )
    return result.first() is not None


async def release_deliveries(conn: AsyncConnection, delivery_ids: Sequence[int]) -> None:
    await conn.execute(
        text(
            "UPDATE notifications.webhook_deliveries SET locked_until = NULL"
            " WHERE id = ANY (:ids) AND status = 'pending'"
        ),
        {"ids": list(delivery_ids)},
    )


async def fail_delivery(conn: AsyncConnection, delivery_id: int, error: str, now: datetime) -> None:
    await conn.execute(
        text(
            """
            UPDATE notifications.webhook_deliveries
               SET status = 'failed', last_error = :error, locked_until = NULL, completed_at = :now,
                   updated_at = :now
             WHERE id = :id AND status = 'pending'
            """
        ),
        {"id": delivery_id, "error": error, "now": now},
    )


async def list_deliveries(
    conn: AsyncConnection, endpoint_id: int, limit: int, before_id: int | None
) -> list[dict[str, Any]]:
    result = await conn.execute(
        text(
            f"""
            SELECT {DELIVERY_COLUMNS} FROM notifications.webhook_deliveries d
             WHERE d.endpoint_id = :endpoint_id AND (CAST(:before AS bigint) IS NULL OR d.id < :before)
             ORDER BY d.id DESC LIMIT :limit
            """
        ),
        {"endpoint_id": endpoint_id, "limit": limit, "before": before_id},
    )
    return _rows(result)


async def get_delivery(conn: AsyncConnection, delivery_id: int) -> dict[str, Any] | None:
    result = await conn.execute(
        text(f"SELECT {DELIVERY_COLUMNS} FROM notifications.webhook_deliveries d WHERE d.id = :id"),
        {"id": delivery_id},
    )
    return _row(result)


async def attempts_of(conn: AsyncConnection, delivery_ids: Sequence[int]) -> list[dict[str, Any]]:
    if not delivery_ids:
        return []
    result = await conn.execute(
        text(
            """
            SELECT delivery_id, attempt, attempted_at, duration_ms, response_code, error, outcome
              FROM notifications.webhook_attempts WHERE delivery_id = ANY (:ids)
             ORDER BY delivery_id, attempt
            """
        ),
        {"ids": list(delivery_ids)},
    )
    return _rows(result)


async def redeliver(conn: AsyncConnection, delivery_id: int, now: datetime) -> bool:
    """Put the delivery back at the start of the schedule, due now; False if it is gone (pruned)."""
    result = await conn.execute(
        text(
            """
            UPDATE notifications.webhook_deliveries
               SET status = 'pending', failures = 0, next_attempt_at = :now, locked_until = NULL,
                   completed_at = NULL, updated_at = :now
             WHERE id = :id
            RETURNING id
            """
        ),
        {"id": delivery_id, "now": now},
    )
    return result.first() is not None


# --- low-stock alerts --------------------------------------------------------------------------------------

ALERT_COLUMNS = """
    id, product_id, product_name, threshold, stock_at_open, opened_at, opened_event_id, stock_at_close,
    closed_at, closed_event_id
"""


async def open_alert(
    conn: AsyncConnection,
    *,
    product_id: int,
    name: str,
    threshold: int,
    stock: int,
    at: datetime,
    event_id: UUID,
) -> bool:
    """Open the product's alert unless one is open; True when this call opened it."""
    result = await conn.execute(
        text(
            """
            INSERT INTO notifications.low_stock_alerts
                   (product_id, product_name, threshold, stock_at_open, opened_at, opened_event_id)
            VALUES (:product_id, :name, :threshold, :stock, :at, :event_id)
            ON CONFLICT (product_id) WHERE closed_at IS NULL DO NOTHING
            RETURNING id
            """
        ),
        {
            "product_id": product_id,
            "name": name,
            "threshold": threshold,
            "stock": stock,
            "at": at,
            "event_id": event_id,
        },
    )
    return result.first() is not None


async def close_alert(
    conn: AsyncConnection, *, product_id: int, stock: int, at: datetime, event_id: UUID
) -> bool:
    result = await conn.execute(
        text(
            """
            UPDATE notifications.low_stock_alerts
               SET closed_at = :at, stock_at_close = :stock, closed_event_id = :event_id
             WHERE product_id = :product_id AND closed_at IS NULL
            RETURNING id
            """
        ),
        {"product_id": product_id, "stock": stock, "at": at, "event_id": event_id},
    )
    return result.first() is not None


async def list_alerts(conn: AsyncConnection, state: str, limit: int) -> list[dict[str, Any]]:
    condition = {"open": "closed_at IS NULL", "closed": "closed_at IS NOT NULL", "all": "true"}[state]
    result = await conn.execute(
        text(
            f"SELECT {ALERT_COLUMNS} FROM notifications.low_stock_alerts WHERE {condition}"
            " ORDER BY id DESC LIMIT :limit"
        ),
        {"limit": limit},
    )
    return _rows(result)


# --- sales -------------------------------------------------------------------------------------------------


async def add_sales(conn: AsyncConnection, day: date, rows: Sequence[tuple[int, int, int, int]]) -> None:
    """Add (product_id, units, revenue_cents, refunds_cents) to the day's totals."""
    if not rows:
        return
    await conn.execute(
        text(
            """
            INSERT INTO notifications.sales_daily AS s (day, product_id, units, revenue_cents, refunds_cents)
            SELECT :day, p, u, r, f
              FROM unnest(CAST(:products AS bigint[]), CAST(:units AS bigint[]),
                          CAST(:revenue AS bigint[]), CAST(:refunds AS bigint[])) AS t (p, u, r, f)
            ON CONFLICT (day, product_id) DO UPDATE
               SET units = s.units + excluded.units,
                   revenue_cents = s.revenue_cents + excluded.revenue_cents,
                   refunds_cents = s.refunds_cents + excluded.refunds_cents
            """
        ),
        {
            "day": day,
            "products": [r[0] for r in rows],
            "units": [r[1] for r in rows],
            "revenue": [r[2] for r in rows],
            "refunds": [r[3] for r in rows],
        },
    )


async def sales_by_day(conn: AsyncConnection, first: date, last: date) -> list[dict[str, Any]]:
    result = await conn.execute(
        text(
            """
            SELECT d::date AS day, coalesce(sum(s.units), 0)::bigint AS units,
                   coalesce(sum(s.revenue_cents), 0)::bigint AS revenue_cents,
                   coalesce(sum(s.refunds_cents), 0)::bigint AS refunds_cents
              FROM generate_series(CAST(:first AS date), CAST(:last AS date), interval '1 day') AS d
              LEFT JOIN notifications.sales_daily s ON s.day = d::date
             GROUP BY d ORDER BY d
            """
        ),
        {"first": first, "last": last},
    )
    return _rows(result)


async def top_products(conn: AsyncConnection, first: date, last: date, limit: int) -> list[dict[str, Any]]:
    result = await conn.execute(
        text(
            """
            SELECT product_id, sum(units)::bigint AS units, sum(revenue_cents)::bigint AS revenue_cents,
                   sum(refunds_cents)::bigint AS refunds_cents
              FROM notifications.sales_daily
             WHERE day BETWEEN :first AND :last
             GROUP BY product_id
             ORDER BY sum(revenue_cents) - sum(refunds_cents) DESC, product_id
             LIMIT :limit
            """
        ),
        {"first": first, "last": last, "limit": limit},
    )
    return _rows(result)


# --- the NATS relay ----------------------------------------------------------------------------------------


async def lock_relay(conn: AsyncConnection) -> bool:
    result = await conn.execute(text("SELECT pg_try_advisory_xact_lock(hashtext('notifications.relay'))"))
    return bool(result.scalar_one())


async def unpublished(conn: AsyncConnection, limit: int) -> list[dict[str, Any]]:
    result = await conn.execute(
        text(
            f"SELECT {EVENT_COLUMNS} FROM outbox.events e"
            " WHERE e.published_at IS NULL ORDER BY e.id LIMIT :limit"
        ),
        {"limit": limit},
    )
    return _rows(result)


async def mark_published(conn: AsyncConnection, pks: Sequence[int]) -> None:
    await conn.execute(
        text("UPDATE outbox.events SET published_at = now() WHERE id = ANY (:ids)"), {"ids": list(pks)}
    )
