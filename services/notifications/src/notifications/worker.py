"""The outbox worker: fans committed events out to one job per consumer, then runs each consumer's jobs.

At least once, in order per aggregate, and idempotent: a consumer's effect commits in the same transaction
that flips its job to done (``repository.complete_job`` refuses a job that is done already), so a job run
twice — after a crash, or a lease that expired — takes effect once. The one effect outside the database,
the email or the webhook POST, may be repeated by a crash between it and that commit: an email then goes
again with the same Message-ID, a webhook with the same ``webhook-id``.
"""

import asyncio
import contextlib
import os
import random
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aiosmtplib
import asyncpg
import httpx
import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from notifications import mail, metrics, repository, retries, webhooks
from notifications.clock import Clock
from notifications.events import (
    Event,
    InvalidEvent,
    OrderCancelled,
    OrderData,
    OrderPaid,
    OrderRefunded,
    StockLevel,
    parse_data,
)
from notifications.settings import NotificationsSettings
from servicekit.db import plain_url

log = structlog.get_logger()

# consumer -> the event types it handles ('*': every type).
ROUTES: dict[str, tuple[str, ...]] = {
    "email": tuple(mail.EMAILS),
    "webhooks": ("*",),
    # The producers write stock.low and stock.restored exactly on the crossings, under the product's row lock,
    # so in the product's event order they alternate; the alert follows the last one.
    "alerts": ("stock.low", "stock.restored"),
    "sales": ("order.paid", "order.refunded", "order.cancelled"),
}
CHANNEL = "outbox"


class _AlreadySettled(Exception):
    """Another worker settled the job first: roll this transaction's effect back."""


def split_cents(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` in proportion to ``weights`` exactly (largest remainder), so the parts add up."""
    whole = sum(weights)
    if whole <= 0:
        shares = [0] * len(weights)
        if shares:
            shares[0] = total
        return shares
    shares = [total * w // whole for w in weights]
    remainders = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % whole), i))
    for i in remainders[: total - sum(shares)]:
        shares[i] += 1
    return shares


def sales_rows(event_type: str, data: Any) -> list[tuple[int, int, int, int]]:
    """(product_id, units, revenue_cents, refunds_cents) that the event adds to its day."""
    if isinstance(data, OrderPaid):
        return [(i.product_id, i.qty, i.qty * i.price_cents, 0) for i in data.items]
    refund = 0
    if isinstance(data, OrderRefunded):
        refund = data.amount_cents
    elif isinstance(data, OrderCancelled):
        refund = data.refund_cents
    if refund == 0 or not data.items:
        return []
    shares = split_cents(refund, [i.qty * i.price_cents for i in data.items])
    return [(i.product_id, 0, 0, share) for i, share in zip(data.items, shares, strict=True)]


class Worker:
    def __init__(
        self,
        engine: AsyncEngine,
        settings: NotificationsSettings,
        *,
        clock: Clock,
        http: httpx.AsyncClient,
        rng: random.Random | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self.http = http
        self.rng = rng or random.Random()
        self.worker_id = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self._wake = asyncio.Event()
        self._routes = [(consumer, t) for consumer, types in ROUTES.items() for t in types]
        self._handlers: dict[str, Callable[[dict[str, Any], Event, Any], Awaitable[None]]] = {
            "email": self._email,
            "webhooks": self._webhooks,
            "alerts": self._alerts,
            "sales": self._sales,
        }
        self._next_prune = 0.0  # time.monotonic() of the next prune; the first pass prunes
        self.relay: Any = None
        if settings.nats_url:
            from notifications.relay import NatsRelay

            self.relay = NatsRelay(engine, settings)

    def wake(self) -> None:
        self._wake.set()

    # --- the loop ------------------------------------------------------------------------------------------

    async def run(self) -> None:
        listener = asyncio.create_task(self._listen())
        try:
            while True:
                self._wake.clear()  # before the pass: a wake during it makes the next one start at once
                try:
                    busy = await self.run_once()
                except Exception:  # the database or the broker is away: log, wait, try again
                    metrics.WORKER_ERRORS.inc()
                    log.exception("worker_iteration_failed")
                    busy = 0
                if not busy:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.settings.poll_interval_s)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            if self.relay is not None:
                await self.relay.close()

    async def run_once(self) -> int:
        """One pass over everything due; returns how many items it handled (0: nothing was due)."""
        handled = 0
        async with self.engine.begin() as conn:
            handled += await repository.dispatch(conn, self._routes, self.settings.batch_size)
        for consumer in ROUTES:
            handled += await self._consume(consumer)
        handled += await self._deliver()
        if self.relay is not None:
            handled += await self.relay.publish_batch()
        handled += await self.prune()
        await self._observe_lag()
        return handled

    async def prune(self) -> int:
        """Delete one batch of finished events past the retention, if a prune is due; how many. A full
        batch makes the next pass prune again (a backlog goes in short transactions, one after another)."""
        started = time.monotonic()
        if started < self._next_prune:
            return 0
        settings = self.settings
        try:
            async with self.engine.begin() as conn:
                pruned = await repository.prune_events(
                    conn,
                    retention_s=settings.outbox_retention_days * 86_400,
                    limit=settings.prune_batch_size,
                    require_published=self.relay is not None,
                )
        except IntegrityError:  # a job or delivery turned pending under the prune: it left them all
            log.warning("outbox_prune_raced")
            pruned = 0
        full = pruned >= settings.prune_batch_size
        self._next_prune = started if full else started + settings.prune_interval_s
        if pruned:
            metrics.EVENTS_PRUNED.inc(pruned)
            log.info("outbox_pruned", events=pruned, more=full)
        return pruned

    async def _listen(self) -> None:
        """LISTEN outbox on a connection of its own, reconnecting when it is lost (the poll covers gaps)."""
        while True:
            lost = asyncio.Event()
            try:
                conn = await asyncpg.connect(plain_url(self.settings.database_url))
            except (OSError, asyncpg.PostgresError):
                await asyncio.sleep(self.settings.poll_interval_s)
                continue
            try:
                conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
                await conn.add_listener(CHANNEL, lambda *_args: self._wake.set())
                self._wake.set()  # notifications sent while we were not listening are lost: look now
                await lost.wait()
                log.warning("worker_listener_lost")
            finally:
                with contextlib.suppress(Exception):
                    await conn.close()

    async def _observe_lag(self) -> None:
        async with self.engine.connect() as conn:
            ages = await repository.oldest_pending(conn)
        for name in ("dispatch", *ROUTES):
            metrics.OLDEST_PENDING.labels(name).set(ages.get(name, 0.0))

    # --- jobs ----------------------------------------------------------------------------------------------

    async def _consume(self, consumer: str) -> int:
        async with self.engine.begin() as conn:
            jobs = await repository.claim_jobs(
                conn,
                consumer,
                now=self.clock.now(),
                worker=self.worker_id,
                lease_s=self.settings.lease_s,
                limit=self.settings.batch_size,
            )
        # Stop taking jobs of this batch well before their lease runs out (a slow mail server): past it,
        # another worker may take them too, and an email would go twice.
        deadline = time.monotonic() + self.settings.lease_s / 2
        for position, job in enumerate(jobs):
            if time.monotonic() > deadline:
                async with self.engine.begin() as conn:
                    await repository.release_jobs(
                        conn, [j["job_id"] for j in jobs[position:]], self.worker_id
                    )
                break
            event = Event.model_validate(job)
            try:
                data = parse_data(event)
            except InvalidEvent as exc:
                log.warning("event_invalid", consumer=consumer, event_id=str(event.event_id), error=str(exc))
                await self._settle(job, consumer, event, "failed", f"invalid event: {exc}"[:1000])
                continue
            try:
                await self._handlers[consumer](job, event, data)
            except Exception as exc:  # a bug or a broken template must not block the aggregate forever
                log.exception("event_handler_failed", consumer=consumer, event_id=str(event.event_id))
                await self._retry(job, consumer, event, f"{type(exc).__name__}: {exc}")
        return len(jobs)

    async def _apply(
        self,
        job: dict[str, Any],
        consumer: str,
        event: Event,
        effect: Callable[[AsyncConnection], Awaitable[str]],
    ) -> None:
        """Run ``effect`` and mark the job done in one transaction, or neither."""
        try:
            async with self.engine.begin() as conn:
                summary = await effect(conn)
                if not await repository.complete_job(conn, job["job_id"], state="done", effect=summary):
                    raise _AlreadySettled
        except _AlreadySettled:
            return
        metrics.EVENTS.labels(consumer, "done").inc()
        metrics.EVENT_LAG.labels(consumer).observe(
            max(0.0, (datetime.now(UTC) - event.occurred_at).total_seconds())
        )
        log.info(
            "event_consumed", consumer=consumer, event_id=str(event.event_id), type=event.type, effect=summary
        )

    async def _settle(
        self, job: dict[str, Any], consumer: str, event: Event, state: str, effect: str
    ) -> None:
        async with self.engine.begin() as conn:
            settled = await repository.complete_job(conn, job["job_id"], state=state, effect=effect)
        if settled:
            metrics.EVENTS.labels(consumer, "done" if state == "done" else "failed").inc()

    async def _retry(self, job: dict[str, Any], consumer: str, event: Event, error: str) -> None:
        delay = retries.next_delay(job["attempts"], self.rng)
        if delay is None:
            log.error("event_failed", consumer=consumer, event_id=str(event.event_id), error=error)
            await self._settle(job, consumer, event, "failed", f"gave up: {error}"[:1000])
            return
        metrics.EVENTS.labels(consumer, "retrying").inc()
        log.warning(
            "event_retrying",
            consumer=consumer,
            event_id=str(event.event_id),
            error=error,
            attempt=job["attempts"],
            retry_in_s=delay.total_seconds(),
        )
        async with self.engine.begin() as conn:
            await repository.retry_job(conn, job["job_id"], run_at=self.clock.now() + delay, error=error)

    # --- consumers -----------------------------------------------------------------------------------------

    async def _email(self, job: dict[str, Any], event: Event, data: Any) -> None:
        settings = self.settings
        name = None
        if isinstance(data, StockLevel):  # only an opened alert enqueues these (see _alerts)
            if not settings.admin_email:
                await self._settle(job, "email", event, "done", "no admin email")
                return
            email: mail.Email | None = mail.render_low_stock(
                event.event_id,
                data,
                settings.admin_email,
                domain=settings.message_id_domain,
                shop_url=settings.shop_url,
            )
        else:
            email = mail.render(
                event.type,
                event.event_id,
                data,
                domain=settings.message_id_domain,
                shop_url=settings.shop_url,
            )
            name = data.customer.name if data.customer else None
        if email is None:
            await self._settle(job, "email", event, "done", "no customer email")
            return
        message = mail.build_message(email, settings.mail_from, name)
        try:
            await mail.send(message, settings.smtp_url, settings.smtp_timeout_s)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            await self._settle(job, "email", event, "failed", f"recipient refused: {exc}"[:1000])
            return
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            await self._retry(job, "email", event, f"{type(exc).__name__}: {exc}")
            return
        metrics.EMAILS.labels(email.kind).inc()

        async def record(conn: AsyncConnection) -> str:
            await repository.record_email(conn, event.event_id, email)
            return f"sent {email.message_id} to {email.to_address}"

        await self._apply(job, "email", event, record)

    async def _webhooks(self, job: dict[str, Any], event: Event, _data: object) -> None:
        async def fan_out(conn: AsyncConnection) -> str:
            count = await repository.create_deliveries(conn, event, now=self.clock.now())
            return f"{count} deliveries"

        await self._apply(job, "webhooks", event, fan_out)
        self.wake()

    async def _alerts(self, job: dict[str, Any], event: Event, data: StockLevel) -> None:
        async def track(conn: AsyncConnection) -> str:
            low = data.threshold is not None and data.stock_qty <= data.threshold
            if low:
                assert data.threshold is not None
                if await repository.open_alert(
                    conn,
                    product_id=data.product_id,
                    name=data.name,
                    threshold=data.threshold,
                    stock=data.stock_qty,
                    at=event.occurred_at,
                    event_id=event.event_id,
                ):
                    if self.settings.admin_email:  # mailed once, because the alert opens once
                        await repository.enqueue_job(conn, "email", event)
                    metrics.ALERTS.labels("opened").inc()
                    log.info("low_stock_alert_opened", product_id=data.product_id, stock_qty=data.stock_qty)
                    return "alert opened"
                return "alert already open"
            if await repository.close_alert(
                conn,
                product_id=data.product_id,
                stock=data.stock_qty,
                at=event.occurred_at,
                event_id=event.event_id,
            ):
                metrics.ALERTS.labels("closed").inc()
                log.info("low_stock_alert_closed", product_id=data.product_id, stock_qty=data.stock_qty)
                return "alert closed"
            return "no alert"

        await self._apply(job, "alerts", event, track)

    async def _sales(self, job: dict[str, Any], event: Event, data: OrderData) -> None:
        async def count(conn: AsyncConnection) -> str:
            rows = sales_rows(event.type, data)
            await repository.add_sales(conn, event.occurred_at.astimezone(UTC).date(), rows)
            return f"{len(rows)} sales rows"

        await self._apply(job, "sales", event, count)

    # --- webhook deliveries --------------------------------------------------------------------------------

    async def _deliver(self) -> int:
        async with self.engine.begin() as conn:
            due = await repository.claim_deliveries(
                conn, now=self.clock.now(), lease_s=self.settings.lease_s, limit=self.settings.batch_size
            )
        gate = asyncio.Semaphore(self.settings.webhook_concurrency)
        deadline = time.monotonic() + self.settings.lease_s / 2
        released: list[int] = []

        async def one(delivery: dict[str, Any]) -> None:
            async with gate:
                if time.monotonic() > deadline:  # as for jobs: never attempt past half the lease
                    released.append(delivery["delivery_id"])
                    return
                await self._deliver_one(delivery)

        await asyncio.gather(*(one(d) for d in due))
        if released:
            async with self.engine.begin() as conn:
                await repository.release_deliveries(conn, released)
        return len(due)

    async def _deliver_one(self, delivery: dict[str, Any]) -> None:
        event = Event.model_validate(delivery)
        if delivery["endpoint_deleted"]:
            async with self.engine.begin() as conn:
                await repository.fail_delivery(
                    conn, delivery["delivery_id"], "endpoint deleted", self.clock.now()
                )
            return
        attempted_at = self.clock.now()
        result = await webhooks.attempt(
            self.http,
            delivery["url"],
            delivery["secret"],
            event,
            allow_private=self.settings.webhooks_allow_private,
            timeout_s=self.settings.webhook_timeout_s,
        )
        next_attempt_at = None
        if result.succeeded:
            outcome = "succeeded"
        else:
            delay = retries.next_delay(delivery["failures"] + 1, self.rng)
            outcome = "failed" if delay is None else "retrying"
            if delay is not None:
                next_attempt_at = attempted_at + delay
        async with self.engine.begin() as conn:
            recorded = await repository.record_attempt(
                conn,
                delivery["delivery_id"],
                seen_attempts=delivery["attempts"],
                attempted_at=attempted_at,
                outcome=outcome,
                next_attempt_at=next_attempt_at,
                response_code=result.response_code,
                error=result.error,
                duration_ms=result.duration_ms,
            )
        if recorded:
            metrics.WEBHOOK_DELIVERIES.labels(outcome).inc()
            log.info(
                "webhook_attempted",
                delivery_id=delivery["delivery_id"],
                event_id=str(event.event_id),
                attempt=delivery["attempts"] + 1,
                outcome=outcome,
                **webhooks.describe(result),
            )
