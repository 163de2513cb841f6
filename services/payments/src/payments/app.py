import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI

from payments.api import router
from payments.processor import SimulatedProcessor
from payments.settings import PaymentsSettings
from servicekit.app import create_service_app
from servicekit.idempotency import IdempotencyStore, prune_periodically

IDEMPOTENCY_TABLE = "payments.idempotency_keys"


def create_app(settings: PaymentsSettings | None = None) -> FastAPI:
    settings = settings or PaymentsSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = IdempotencyStore(
            app.state.engine, IDEMPOTENCY_TABLE, ttl=timedelta(hours=settings.idempotency_ttl_hours)
        )
        app.state.idempotency = store
        # Tests and the demo may swap this object (or change its latency) to misbehave on purpose.
        app.state.processor = SimulatedProcessor(latency_s=settings.processor_latency_s)
        pruner = asyncio.create_task(prune_periodically(store, settings.idempotency_prune_interval_s))
        try:
            yield
        finally:
            pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pruner

    return create_service_app(
        settings,
        title="lockstock payments",
        description=(
            "Payments against a simulated card processor: authorize, capture, void and refund, each under "
            "a Stripe-style idempotency key."
        ),
        routers=[router],
        lifespan=lifespan,
    )
