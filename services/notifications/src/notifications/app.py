import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from notifications.api import CALLERS, router
from notifications.clock import Clock, SystemClock
from notifications.settings import NotificationsSettings
from notifications.worker import Worker
from servicekit.app import create_service_app


def create_app(settings: NotificationsSettings | None = None, *, clock: Clock | None = None) -> FastAPI:
    """The notifications API, and (NOTIFICATIONS_WORKER_ENABLED, default true) the outbox worker in the same
    process. ``clock`` lets tests run the retry schedule fast."""
    settings = settings or NotificationsSettings()
    the_clock: Clock = clock or SystemClock()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.clock = the_clock
        async with httpx.AsyncClient(headers={"user-agent": "lockstock-webhooks/1"}) as http:
            task = None
            if settings.worker_enabled:
                worker = Worker(app.state.engine, settings, clock=the_clock, http=http)
                app.state.worker = worker
                task = asyncio.create_task(worker.run())
            try:
                yield
            finally:
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    return create_service_app(
        settings,
        title="lockstock notifications",
        description=(
            "The outbox worker: order emails, signed webhooks (Standard Webhooks) with retries, low-stock "
            "alerts and daily sales, all from the events the other services commit to outbox.events."
        ),
        routers=[router],
        callers=CALLERS,
        lifespan=lifespan,
    )
