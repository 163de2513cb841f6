"""Four ways to take one unit of stock, run by N concurrent buyers on real connections.

Only one of them is wrong, and it lives here and nowhere else: ``naive`` reads the stock, decides in the
application, and writes back the number it computed, at READ COMMITTED with no lock. Two buyers who read the
same value both "sell" and both write the same new value: a lost update. The services never do this.

Every strategy works on a scratch product this module creates and deletes; nothing else is touched.
"""

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass

import asyncpg

# (connection, product id, qty, pause seconds) -> (accepted, retries)
Strategy = Callable[[asyncpg.Connection, int, int, float], Awaitable[tuple[bool, int]]]

SERIALIZABLE_MAX_ATTEMPTS = 200


async def naive(conn: asyncpg.Connection, product_id: int, qty: int, pause_s: float) -> tuple[bool, int]:
    """THE BUG: read, decide, pause (the race window, widened on purpose), write the computed value."""
    async with conn.transaction(isolation="read_committed"):
        stock = await conn.fetchval("SELECT stock_qty FROM inventory.products WHERE id = $1", product_id)
        if stock < qty:
            return False, 0
        if pause_s:
            await asyncio.sleep(pause_s)
        await conn.execute(
            "UPDATE inventory.products SET stock_qty = $2 WHERE id = $1", product_id, stock - qty
        )
    return True, 0


async def for_update(conn: asyncpg.Connection, product_id: int, qty: int, pause_s: float) -> tuple[bool, int]:
    """SELECT … FOR UPDATE: the row is ours from the read to the commit; others queue behind it."""
    async with conn.transaction(isolation="read_committed"):
        stock = await conn.fetchval(
            "SELECT stock_qty FROM inventory.products WHERE id = $1 FOR UPDATE", product_id
        )
        if stock < qty:
            return False, 0
        await conn.execute(
            "UPDATE inventory.products SET stock_qty = stock_qty - $2 WHERE id = $1", product_id, qty
        )
    return True, 0


async def conditional(
    conn: asyncpg.Connection, product_id: int, qty: int, pause_s: float
) -> tuple[bool, int]:
    """One conditional UPDATE: the check and the write are one statement, re-checked on the newest row."""
    row = await conn.fetchrow(
        "UPDATE inventory.products SET stock_qty = stock_qty - $2 WHERE id = $1 AND stock_qty >= $2 "
        "RETURNING stock_qty",
        product_id,
        qty,
    )
    return row is not None, 0


async def serializable(
    conn: asyncpg.Connection, product_id: int, qty: int, pause_s: float
) -> tuple[bool, int]:
    """The naive read-then-write, but SERIALIZABLE: PostgreSQL aborts the losers, who retry."""
    retries = 0
    while True:
        try:
            async with conn.transaction(isolation="serializable"):
                stock = await conn.fetchval(
                    "SELECT stock_qty FROM inventory.products WHERE id = $1", product_id
                )
                if stock < qty:
                    return False, retries
                await conn.execute(
                    "UPDATE inventory.products SET stock_qty = $2 WHERE id = $1", product_id, stock - qty
                )
            return True, retries
        except (asyncpg.SerializationError, asyncpg.DeadlockDetectedError):
            retries += 1
            if retries >= SERIALIZABLE_MAX_ATTEMPTS:
                raise
            await asyncio.sleep(0.001 * min(retries, 20))


STRATEGIES: dict[str, tuple[Strategy, str]] = {
    "naive": (naive, "naive, no lock (THE BUG)"),
    "for_update": (for_update, "SELECT … FOR UPDATE"),
    "conditional": (conditional, "UPDATE … WHERE stock>=qty"),
    "serializable": (serializable, "SERIALIZABLE + retries"),
}


@dataclass(frozen=True)
class StrategyResult:
    strategy: str
    label: str
    buyers: int
    initial_stock: int
    accepted: int
    units_sold: int
    final_stock: int
    oversold: int
    retries: int
    errors: int
    seconds: float
    throughput: float
    p50_ms: float
    p99_ms: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(pct) - 1]


async def open_connections(dsn: str, count: int) -> list[asyncpg.Connection]:
    return list(await asyncio.gather(*(asyncpg.connect(dsn) for _ in range(count))))


async def run_strategy(
    name: str, connections: list[asyncpg.Connection], *, stock: int, pause_s: float, qty: int = 1
) -> StrategyResult:
    """A scratch product with ``stock`` units; each connection is one buyer of ``qty``; all start at once."""
    strategy, label = STRATEGIES[name]
    admin = connections[0]
    product_id: int = await admin.fetchval(
        "INSERT INTO inventory.products (name, price_cents, stock_qty) VALUES ($1, 100, $2) RETURNING id",
        f"demo:race scratch ({name})",
        stock,
    )
    start = asyncio.Event()
    latencies: list[float] = []

    async def buyer(conn: asyncpg.Connection) -> tuple[bool, int, bool]:
        await start.wait()
        began = time.perf_counter()
        try:
            accepted, retries = await strategy(conn, product_id, qty, pause_s)
            return accepted, retries, False
        except asyncpg.PostgresError:
            return False, 0, True
        finally:
            latencies.append(time.perf_counter() - began)

    try:
        tasks = [asyncio.create_task(buyer(conn)) for conn in connections]
        await asyncio.sleep(0)  # every buyer is parked on the event before the gun
        began = time.perf_counter()
        start.set()
        outcomes = await asyncio.gather(*tasks)
        seconds = time.perf_counter() - began
        final: int = await admin.fetchval(
            "SELECT stock_qty FROM inventory.products WHERE id = $1", product_id
        )
    finally:
        await admin.execute("DELETE FROM inventory.products WHERE id = $1", product_id)
    accepted = sum(1 for ok, _, _ in outcomes if ok)
    sold = accepted * qty
    latencies_ms = sorted(latency * 1000 for latency in latencies)
    return StrategyResult(
        strategy=name,
        label=label,
        buyers=len(connections),
        initial_stock=stock,
        accepted=accepted,
        units_sold=sold,
        final_stock=final,
        # With CHECK (stock_qty >= 0) stock cannot go negative: a lost update shows as units sold that never
        # left the stock count.
        oversold=sold - (stock - final),
        retries=sum(retries for _, retries, _ in outcomes),
        errors=sum(1 for _, _, failed in outcomes if failed),
        seconds=seconds,
        throughput=len(connections) / seconds if seconds else 0.0,
        p50_ms=percentile(latencies_ms, 50),
        p99_ms=percentile(latencies_ms, 99),
    )


async def run_strategies(
    dsn: str, names: list[str], *, buyers: int, stock: int, pause_s: float
) -> list[StrategyResult]:
    connections = await open_connections(dsn, buyers)
    try:
        return [await run_strategy(name, connections, stock=stock, pause_s=pause_s) for name in names]
    finally:
        await asyncio.gather(*(conn.close() for conn in connections))
