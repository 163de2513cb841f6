"""`python -m payments.prune` (`task payments:prune-keys`): delete idempotency keys older than the TTL.

The service prunes them itself every PAYMENTS_IDEMPOTENCY_PRUNE_INTERVAL_S; this is for cron or by hand.
"""

import asyncio
from datetime import timedelta

from payments.app import IDEMPOTENCY_TABLE
from payments.settings import PaymentsSettings
from servicekit.db import create_engine
from servicekit.idempotency import IdempotencyStore


async def prune(settings: PaymentsSettings) -> int:
    engine = create_engine(settings)
    try:
        store = IdempotencyStore(
            engine, IDEMPOTENCY_TABLE, ttl=timedelta(hours=settings.idempotency_ttl_hours)
        )
        return await store.prune()
    finally:
        await engine.dispose()


def main() -> None:
    settings = PaymentsSettings()
    pruned = asyncio.run(prune(settings))
    print(f"pruned {pruned} payments idempotency keys older than {settings.idempotency_ttl_hours} h")


if __name__ == "__main__":
    main()
