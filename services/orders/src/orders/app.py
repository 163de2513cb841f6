import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from orders.api import CALLERS, router
from orders.batcher import OrderBatcher
from orders.expiry import sweep_periodically
from orders.payments import HttpPaymentsClient, RetryPolicy
from orders.reconciler import reconcile_periodically
from orders.settings import OrdersSettings
from servicekit.app import create_service_app
from servicekit.idempotency import IdempotencyStore, prune_periodically


def create_app(settings: OrdersSettings | None = None) -> FastAPI:
    settings = settings or OrdersSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = IdempotencyStore(
            app.state.engine,
            "orders.idempotency_keys",
            ttl=settings.idempotency_ttl,
            lease=settings.idempotency_lease,
        )
        app.state.idempotency = store
        batcher = (
            OrderBatcher(
                app.state.engine,
                reservation_s=settings.reservation_ttl_s,
                max_batch=settings.placement_max_batch,
            )
            if settings.placement == "batched"
            else None
        )
        app.state.batcher = batcher
        pruner = asyncio.create_task(prune_periodically(store, settings.idempotency_prune_interval_s))
        payments_http = httpx.AsyncClient(
            base_url=settings.payments_url,
            timeout=httpx.Timeout(settings.payments_timeout_s),
            limits=httpx.Limits(
                max_connections=settings.payments_max_connections,
                max_keepalive_connections=settings.payments_max_connections,
            ),
        )
        app.state.payments = HttpPaymentsClient(
            payments_http,
            RetryPolicy(
                attempts=settings.payments_retry_attempts,
                timeout_s=settings.payments_retry_timeout_s,
                wait_initial_s=settings.payments_retry_wait_initial_s,
                wait_max_s=settings.payments_retry_wait_max_s,
                wait_jitter_s=settings.payments_retry_wait_jitter_s,
            ),
            token=settings.service_token,
        )
        tasks = [
            pruner,
            asyncio.create_task(sweep_periodically(app.state.engine, settings.expiry_sweep_interval_s)),
            asyncio.create_task(
                reconcile_periodically(
                    app.state.engine,
                    app.state.payments,
                    settings.reconcile_interval_s,
                    # settling one order takes a few calls (list, void or refund, list again)
                    lease_s=3 * settings.payments_budget_s,
                )
            ),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if batcher is not None:
                await batcher.close()
            await payments_http.aclose()

    return create_service_app(
        settings,
        title="lockstock orders",
        description="Orders, row-locked stock with a reservation deadline, and the money lifecycle: "
        "authorize, capture, cancel, refund, expiry, reconciliation.",
        routers=[router],
        callers=CALLERS,
        lifespan=lifespan,
    )
