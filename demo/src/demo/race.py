"""`task demo:race`: the last Mug, twice bought at once; then why the locks matter, in numbers.

Runs against the live system of `task up` (orders :8002, inventory :8001, its PostgreSQL), calling
the services with the gateway's credential from .data/service-credentials.json. Step 2 talks to the
database directly, on scratch products it creates and deletes.
"""

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from demo.strategies import STRATEGIES, StrategyResult, run_strategies

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:54329/lockstock"

LESSONS = [
    "READ COMMITTED plus a row lock (SELECT … FOR UPDATE, or one conditional UPDATE) is right for stock: the "
    "only shared state is the product row, so locking it makes the check and the write one indivisible step, "
    "and nobody ever has to retry.",
    "The naive read-then-write is wrong at any speed: without a lock, two buyers who read the same count "
    "both sell, and one decrement is lost; the CHECK (stock_qty >= 0) constraint cannot see it.",
    "Optimistic strategies (SERIALIZABLE with retries, or version checks) win when conflicts are rare and a "
    "transaction reads many rows it might not write; on one hot product every loser retries, so they do "
    "more work for the same result.",
    "Payments need idempotency keys because the network, not the database, is the race there: a timed-out "
    "charge may have succeeded, and only a key the payment provider remembers makes the retry safe instead "
    "of a second charge.",
]


def database_url(explicit: str | None) -> str:
    url = (
        explicit
        or os.environ.get("LOCKSTOCK_ADMIN_DATABASE_URL")
        or os.environ.get("DATABASE_URL")
        or DEFAULT_DATABASE_URL
    )
    return url.replace("postgresql+asyncpg://", "postgresql://")


class NotRunningError(Exception):
    pass


def default_credentials_file() -> Path:
    return Path(os.environ.get("LOCKSTOCK_DATA_DIR", ".data")) / "service-credentials.json"


def gateway_headers(credentials_file: Path) -> dict[str, str]:
    """The demo calls orders and inventory as the gateway does, with the gateway's credential from the file
    `task up` writes (docs/adr/0007): the services accept nobody else, and a demo is no reason to widen
    that."""
    try:
        token = json.loads(credentials_file.read_text())["gateway"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise NotRunningError(
            f"no gateway credential in {credentials_file} ({type(exc).__name__}): start `task up` first"
        ) from exc
    return {"Authorization": f"Bearer {token}"}


async def check_live(orders_url: str, inventory_url: str, dsn: str, *, need_services: bool) -> None:
    try:
        conn = await asyncpg.connect(dsn, timeout=3)
        await conn.close()
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        parts = urlsplit(dsn)
        raise NotRunningError(
            f"the database at {parts.hostname}:{parts.port} does not answer ({exc})"
        ) from exc
    if not need_services:
        return
    async with httpx.AsyncClient(timeout=3) as client:
        for name, url in (("orders", orders_url), ("inventory", inventory_url)):
            try:
                (await client.get(f"{url}/healthz")).raise_for_status()
            except httpx.HTTPError as exc:
                raise NotRunningError(f"{name} at {url} does not answer ({exc})") from exc


async def find_mug(client: httpx.AsyncClient, inventory_url: str) -> dict[str, Any]:
    after: int | None = None
    while True:
        params: dict[str, Any] = {"limit": 100} | ({"after": after} if after else {})
        page = (await client.get(f"{inventory_url}/products", params=params)).raise_for_status().json()
        for product in page:
            if product["name"] == "Mug":
                return dict(product)
        if len(page) < 100:
            raise NotRunningError("there is no product named Mug (run `task db:seed`)")
        after = page[-1]["id"]


async def last_mug_race(orders_url: str, inventory_url: str, headers: dict[str, str]) -> dict[str, Any]:
    """Stock 1, two buyers, one winner; over the real services."""
    async with httpx.AsyncClient(timeout=10, headers=headers) as client:
        mug = await find_mug(client, inventory_url)
        (
            await client.patch(f"{inventory_url}/products/{mug['id']}/stock", json={"stock_qty": 1})
        ).raise_for_status()
    body = {"items": [{"productId": mug["id"], "qty": 1}]}

    async def buy(who: str) -> dict[str, Any]:
        # Each buyer its own client, so its own TCP connection: the two requests really race.
        async with httpx.AsyncClient(timeout=10, headers=headers) as buyer:
            began = time.perf_counter()
            response = await buyer.post(f"{orders_url}/orders", json=body)
            return {
                "buyer": who,
                "status": response.status_code,
                "body": response.json(),
                "ms": round((time.perf_counter() - began) * 1000, 1),
            }

    results = list(await asyncio.gather(buy("Alice"), buy("Bob")))
    async with httpx.AsyncClient(timeout=10, headers=headers) as client:
        after = (await client.get(f"{inventory_url}/products/{mug['id']}")).raise_for_status().json()
    return {
        "product": {"id": mug["id"], "name": mug["name"]},
        "buyers": results,
        "stock_after": after["stock_qty"],
    }


def render_race(console: Console, race: dict[str, Any]) -> None:
    console.rule("[bold]1. The last Mug[/bold]")
    console.print(
        f"Set the stock of {race['product']['name']} (#{race['product']['id']}) to [bold]1[/bold], "
        "then sent two POST /orders for it at the same instant.\n"
    )
    table = Table(show_header=True, header_style="bold")
    for column in ("buyer", "HTTP", "outcome", "ms"):
        table.add_column(column)
    for buyer in race["buyers"]:
        body = buyer["body"]
        if buyer["status"] == 201:
            outcome = (
                f"[green]won[/green]: order #{body['orderId']}, {body['status']}, {body['total_cents']} cents"
            )
        else:
            detail = body.get("code") or body.get("title") or ""
            items = body.get("items") or []
            short = ", ".join(f"wanted {i['requested']}, available {i['available']}" for i in items)
            outcome = f"[red]refused[/red]: {detail} {short}".strip()
        table.add_row(buyer["buyer"], str(buyer["status"]), outcome, f"{buyer['ms']}")
    console.print(table)
    console.print(
        f"Stock now: [bold]{race['stock_after']}[/bold]. One unit, one order, one polite refusal.\n"
    )


def render_strategies(console: Console, results: list[StrategyResult], pause_ms: float) -> None:
    if not results:
        return
    first = results[0]
    console.rule("[bold]2. Why the locks matter[/bold]")
    console.print(
        f"{first.buyers} buyers, each on its own database connection, all start together and each wants 1 of "
        f"{first.initial_stock} units of a scratch product."
    )
    if any(r.strategy == "naive" for r in results):
        console.print(
            f"[yellow]The naive strategy is THE BUG, shown on purpose (it exists only in this demo). To make "
            f"its race show every time, it pauses {pause_ms:g} ms between reading the stock and writing it "
            f"back (--pause-ms).[/yellow]"
        )
    table = Table(show_header=True, header_style="bold")
    for column, justify in (
        ("strategy", "left"),
        ("accepted", "right"),
        ("sold", "right"),
        ("stock", "right"),
        ("oversold", "right"),
        ("retries", "right"),
        ("errors", "right"),
        ("tx/s", "right"),
        ("p50 ms", "right"),
        ("p99 ms", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for r in results:
        bad = r.oversold > 0
        table.add_row(
            f"[bold red]{r.label}[/bold red]" if r.strategy == "naive" else r.label,
            str(r.accepted),
            str(r.units_sold),
            str(r.final_stock),
            f"[bold red]{r.oversold}[/bold red]" if bad else "[green]0[/green]",
            str(r.retries),
            str(r.errors),
            f"{r.throughput:,.0f}",
            f"{r.p50_ms:.1f}",
            f"{r.p99_ms:.1f}",
        )
    console.print(table)
    console.print(
        "naive = read at READ COMMITTED, decide in Python, write the computed count back. FOR UPDATE = lock "
        "the row, check, decrement. conditional = one UPDATE that re-checks the newest row. SERIALIZABLE = "
        "the naive code at SERIALIZABLE, retrying serialization failures. accepted = orders told yes; sold = "
        "units promised; stock = final stock; tx/s = buyers served per second.\n"
    )
    console.print(
        "oversold = units sold − units that left the stock count. The CHECK (stock_qty >= 0) constraint "
        "keeps stock from going negative, so lost updates hide here, not in a negative number.\n"
    )


def render_lessons(console: Console) -> None:
    console.rule("[bold]3. What it means[/bold]")
    console.print(Panel("\n\n".join(LESSONS), expand=False))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="demo:race", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--buyers", type=int, default=50, help="concurrent buyers per strategy (default 50)")
    parser.add_argument("--stock", type=int, default=10, help="units of the scratch product (default 10)")
    parser.add_argument(
        "--strategies",
        default=",".join(STRATEGIES),
        help=f"comma-separated, from {', '.join(STRATEGIES)} (default all)",
    )
    parser.add_argument(
        "--pause-ms",
        type=float,
        default=20.0,
        help="the naive strategy's pause between read and write (default 20)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of tables")
    parser.add_argument("--skip-race", action="store_true", help="skip step 1 (the live two-buyer race)")
    parser.add_argument("--orders-url", default=os.environ.get("DEMO_ORDERS_URL", "http://127.0.0.1:8002"))
    parser.add_argument(
        "--inventory-url", default=os.environ.get("DEMO_INVENTORY_URL", "http://127.0.0.1:8001")
    )
    parser.add_argument(
        "--credentials",
        type=Path,
        default=None,
        help="service credentials file (default: service-credentials.json in $LOCKSTOCK_DATA_DIR or .data)",
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="superuser URL (default: LOCKSTOCK_ADMIN_DATABASE_URL, DATABASE_URL, or the "
        "embedded server of `task up`)",
    )
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.strategies.split(",") if name.strip()]
    unknown = [name for name in names if name not in STRATEGIES]
    if unknown:
        parser.error(f"unknown strategies {unknown}; choose from {list(STRATEGIES)}")
    if not 1 <= args.buyers <= 250:
        parser.error("--buyers must be between 1 and 250")
    if not 0 <= args.stock <= 1_000_000:
        parser.error("--stock must be between 0 and 1,000,000")
    if not 0 <= args.pause_ms <= 1_000:
        parser.error("--pause-ms must be between 0 and 1000")
    args.names = names
    return args


async def run(args: argparse.Namespace) -> dict[str, Any]:
    dsn = database_url(args.database_url)
    await check_live(args.orders_url, args.inventory_url, dsn, need_services=not args.skip_race)
    race = None
    if not args.skip_race:
        headers = gateway_headers(args.credentials or default_credentials_file())
        race = await last_mug_race(args.orders_url, args.inventory_url, headers)
    results = await run_strategies(
        dsn, args.names, buyers=args.buyers, stock=args.stock, pause_s=args.pause_ms / 1000
    )
    return {
        "race": race,
        "pause_ms": args.pause_ms,
        "strategies": [result.as_dict() for result in results],
        "lessons": LESSONS,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console()
    try:
        report = asyncio.run(run(args))
    except NotRunningError as exc:
        print(
            f"lockstock is not running: {exc}.\n"
            "Start it in another terminal with `task up` (or `uv run task up`), wait for the URLs, and run "
            "`task demo:race` again.",
            file=sys.stderr,
        )
        return 2
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return 0
    if report["race"]:
        render_race(console, report["race"])
    render_strategies(console, [StrategyResult(**r) for r in report["strategies"]], args.pause_ms)
    render_lessons(console)
    return 0


if __name__ == "__main__":
    sys.exit(main())
