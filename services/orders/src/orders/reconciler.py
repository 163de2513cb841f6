"""The reconciler: closes what a timeout or a crash left open between orders and payments (ADR 0004).

Every call orders makes to payments is preceded by a conditional UPDATE that pushes the order's
``reconcile_at`` past the call's whole retry budget. Once that time has passed, any answer the call was
waiting for is lost or recorded. The reconciler claims due orders with FOR UPDATE SKIP LOCKED, leases them
(reconcile_at pushed forward, committed before anything is asked, so other reconcilers skip them and a
crashed one's lease simply runs out), asks payments what it holds for each order and settles it
(service.settle_order). It clears reconcile_at only when payments and the order agree, and only if no new
call began after its lease was taken.
"""

import asyncio

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from orders import metrics, repository, service
from orders.errors import PaymentsRejected, PaymentsUnavailable
from orders.payments import PaymentsClient, PaymentsRefusal
from servicekit.db import autocommit

log = structlog.get_logger()

BATCH = 50


async def reconcile_once(
    engine: AsyncEngine,
    payments: PaymentsClient,
    *,
    lease_s: float = 60.0,
    horizon_s: float = 0.0,
    batch: int = BATCH,
) -> list[int]:
    """Reconcile every order due by ``now() + horizon_s`` that no other reconciler holds; the ids settled.

    ``horizon_s`` > 0 takes orders before they are due: right only when no call to payments for them can
    still be in flight (tests, once their requests have all completed).
    """
    async with autocommit(engine) as conn:
        claimed = await repository.claim_due(conn, lease_s=lease_s, horizon_s=horizon_s, limit=batch)
    settled: list[int] = []
    for order_id, lease in claimed:
        try:
            settlement = await service.settle_order(engine, payments, order_id)
        except (PaymentsUnavailable, PaymentsRejected, PaymentsRefusal) as exc:
            log.warning("reconcile_deferred", order_id=order_id, error=str(exc))
            continue  # the lease runs out and the next pass tries again
        for fix in settlement.fixes:
            metrics.RECONCILER_FIXES.labels(fix).inc()
        if settlement.fixes:
            log.info(
                "order_reconciled", order_id=order_id, fixes=settlement.fixes, settled=settlement.settled
            )
        if settlement.settled:
            async with autocommit(engine) as conn:
                await repository.finish_reconcile(conn, order_id, lease)
            settled.append(order_id)
    return settled


async def reconcile_periodically(
    engine: AsyncEngine, payments: PaymentsClient, every_s: float, *, lease_s: float
) -> None:
    """Reconcile every ``every_s`` seconds for as long as the app runs (start it as a task)."""
    while True:
        await asyncio.sleep(every_s)
        try:
            while len(await reconcile_once(engine, payments, lease_s=lease_s)) == BATCH:
                pass  # a full batch: there may be more due right now
        except Exception:  # a failed pass is retried next period; it must not kill the loop
            log.exception("reconcile_failed")
