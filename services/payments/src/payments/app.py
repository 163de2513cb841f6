import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI

from payments import service
from payments.api import CALLERS, router
from payments.processor import SimulatedProcessor
from payments.settings import PaymentsSettings
from servicekit.app import create_service_app
from servicekit.idempotency import IdempotencyStore, prune_periodically

IDEMPOTENCY_TABLE = "payments.idempotency_keys"

log = structlog.get_logger()


async def resume_periodically(app: FastAPI, settings: PaymentsSettings) -> None:
    """service.resume_stale every ``resume_interval_s``, for as long as the app runs (start it as a task)."""
    while True:
        await asyncio.sleep(settings.resume_interval_s)
        try:
            await service.resume_stale(
                app.state.engine, app.state.processor, older_than_s=settings.resume_after_s
            )
        except Exception:  # a failed pass (database down) is retried next period; it must not kill the loop
            log.exception("payments_resume_failed")


def create_app(settings: PaymentsSettings | None = None) -> FastAPI:
    settings = settings or PaymentsSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = IdempotencyStore(
            app.state.engine,
            IDEMPOTENCY_TABLE,
            ttl=settings.idempotency_ttl,
            lease=settings.idempotency_lease,
        )
        app.state.idempotency = store
        # Tests and the demo may swap this object (or change its latency) to misbehave on purpose.
        app.state.processor = SimulatedProcessor(latency_s=settings.processor_latency_s)
        tasks = [
            asyncio.create_task(prune_periodically(store, settings.idempotency_prune_interval_s)),
            asyncio.create_task(resume_periodically(app, settings)),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    return create_service_app(
        settings,
        title="lockstock payments",
        description=(
            "Payments against a simulated card processor: authorize, capture, void and refund, each under "
            "a Stripe-style idempotency key."
        ),
        routers=[router],
        callers=CALLERS,
        lifespan=lifespan,
    )
