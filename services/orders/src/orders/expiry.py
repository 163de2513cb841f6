"""The expiry sweeper: reservations past their deadline become EXPIRED and give their stock back, once.

Safe in every orders process at once: each sweep claims its batch with FOR UPDATE SKIP LOCKED, so two
sweepers never take the same order, and the statement that expires an order is the only one that restocks
it (repository.EXPIRE_ORDERS).
"""

import asyncio

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from orders import metrics, repository
from servicekit.db import autocommit

log = structlog.get_logger()

BATCH = 100


async def sweep_expired(engine: AsyncEngine, *, batch: int = BATCH) -> list[int]:
    """Expire every overdue reservation no other process holds right now; the ids this call expired."""
    expired: list[int] = []
    async with autocommit(engine) as conn:
        while True:
            ids = await repository.expire_orders(conn, limit=batch)
            expired.extend(ids)
            if len(ids) < batch:
                break
    if expired:
        metrics.EXPIRIES.inc(len(expired))
        log.info("orders_expired", count=len(expired), order_ids=expired[:50])
    return expired


async def sweep_periodically(engine: AsyncEngine, every_s: float) -> None:
    """Sweep every ``every_s`` seconds for as long as the app runs (start it as a task)."""
    while True:
        await asyncio.sleep(every_s)
        try:
            await sweep_expired(engine)
        except Exception:  # a failed sweep is retried next period; it must not kill the loop
            log.exception("expiry_sweep_failed")
