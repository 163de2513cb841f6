import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import structlog
from fastapi import FastAPI

from orders.api import router
from orders.settings import OrdersSettings
from servicekit.app import create_service_app
from servicekit.idempotency import IdempotencyStore

log = structlog.get_logger()


async def prune_idempotency_keys(store: IdempotencyStore, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        try:
            pruned = await store.prune()
            if pruned:
                log.info("idempotency_keys_pruned", count=pruned)
        except Exception:  # a failed prune is retried next period; it must not kill the loop
            log.exception("idempotency_prune_failed")


def create_app(settings: OrdersSettings | None = None) -> FastAPI:
    settings = settings or OrdersSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = IdempotencyStore(
            app.state.engine, "orders.idempotency_keys", ttl=timedelta(hours=settings.idempotency_ttl_hours)
        )
        app.state.idempotency = store
        pruner = asyncio.create_task(prune_idempotency_keys(store, settings.idempotency_prune_interval_s))
        try:
            yield
        finally:
            pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pruner

    return create_service_app(
        settings, title="lockstock orders", description="Orders, row-locked stock, cancellation.",
        routers=[router], lifespan=lifespan,
    )
