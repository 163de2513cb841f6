import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

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
            app.state.engine,
            IDEMPOTENCY_TABLE,
            ttl=settings.idempotency_ttl,
            lease=settings.idempotency_lease,
        )
        app.state.idempotency = store
        # Tests and the demo may swap this object (or change its rate and latency) to misbehave on purpose.
        app.state.processor = SimulatedProcessor(
            success_rate=settings.processor_success_rate, latency_s=settings.processor_latency_s
        )
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
        description="Charges against a simulated card processor, with Stripe-style idempotency keys.",
        routers=[router],
        lifespan=lifespan,
    )
