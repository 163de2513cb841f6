"""The load generators: pgbench (the database's own limit) and wrk (compiled, Lua-scripted) for HTTP, with a
plain Python asyncio generator as a labelled fallback where wrk is not installed.

Each returns a Measurement. The generator's CPU share is its children's (or our own, for the fallback)
user+system CPU time over the wall time, as a share of the whole machine.
"""

import asyncio
import json
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from orders.repository import PLACE_ORDER
from servicekit.db import plain_url

NCPU = os.cpu_count() or 1


@dataclass
class Measurement:
    target: str  # pgbench-same-sql | pgbench-textbook | orders-http[-single|-2p] | gateway-graphql[-2p]
    workload: str  # hot | spread
    concurrency: int
    generator: str
    seconds: float
    requests: int
    orders_created: int
    errors: int
    ops: float  # orders per second (created orders over the wall time)
    p50_ms: float
    p99_ms: float
    generator_cpu_pct: float  # of the whole machine
    ratio: float | None = None  # ops / pgbench-same-sql ops, same workload and concurrency
    ratio_to_orders: float | None = None  # gateway only: ops / orders REST with as many processes, same cell
    note: str = ""
    machine_cpu_pct: float = 0.0  # how busy the whole machine was (everyone's processes, not only ours)
    app_cpu_pct: dict[str, float] = field(default_factory=dict)  # each app (all its processes), % of one core
    app_cpu_ms_per_order: dict[str, float] = field(default_factory=dict)  # each app's CPU per order created
    processes: int = 1  # of the app under load (orders, or the gateway and the orders behind it)
    placement: str = ""  # the orders app's ORDERS_PLACEMENT (batched | single); "" for pgbench
    rounds_ops: list[float] = field(default_factory=list)  # orders/s of every round (the best is reported)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class CpuSnapshot:
    at: float
    machine_busy: float  # jiffies, all CPUs
    machine_total: float
    processes: dict[str, float]  # name -> CPU seconds so far


def process_cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def tree_cpu_seconds(pid: int) -> float:
    """A process's CPU and its descendants' (uvicorn's workers)."""
    from bench.system import process_tree

    return sum(process_cpu_seconds(each) for each in process_tree(pid))


def cpu_snapshot(pids: dict[str, int]) -> CpuSnapshot:
    busy = total = 0.0
    try:
        values = [float(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        total = sum(values[:8])
        busy = total - values[3] - values[4]  # idle, iowait
    except (OSError, IndexError, ValueError):
        pass
    return CpuSnapshot(
        time.perf_counter(), busy, total, {name: tree_cpu_seconds(pid) for name, pid in pids.items()}
    )


def attach_cpu(measurement: Measurement, before: CpuSnapshot, after: CpuSnapshot) -> None:
    wall = after.at - before.at
    if after.machine_total > before.machine_total:
        measurement.machine_cpu_pct = round(
            100 * (after.machine_busy - before.machine_busy) / (after.machine_total - before.machine_total), 1
        )
    used = {name: after.processes[name] - before.processes.get(name, 0.0) for name in after.processes}
    if wall > 0:
        measurement.app_cpu_pct = {name: round(100 * seconds / wall, 1) for name, seconds in used.items()}
    if measurement.orders_created > 0:
        measurement.app_cpu_ms_per_order = {
            name: round(1000 * seconds / measurement.orders_created, 2) for name, seconds in used.items()
        }


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def quantile(values: list[float], pct: int) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


# --- pgbench ---


def same_sql_script(product: str) -> str:
    """PLACE_ORDER itself, its bind parameters turned into pgbench variables: one product, qty 1, no key, no
    customer, the default reservation."""
    body = PLACE_ORDER.text
    body = body.replace(":product_ids", "ARRAY[CAST(:pid AS bigint)]").replace(":qtys", "ARRAY[1]")
    body = body.replace(":idempotency_key", "NULL").replace(":customer", "NULL")
    body = body.replace(":reservation_s", "900")  # orders' default reservation
    assert re.search(r"(?<!:):(?!pid\b)[a-z_]+", body) is None, "an unconverted bind parameter is left"
    return f"\\set pid {product}\n{body.strip()};\n"


def textbook_script(product: str) -> str:
    """The multi-statement version: each statement is a round trip, and the row lock is held across them."""
    return f"""\\set pid {product}
BEGIN;
SELECT price_cents, stock_qty FROM inventory.products WHERE id = :pid FOR UPDATE \\gset
INSERT INTO orders.orders (status, total_cents) VALUES ('PENDING', :price_cents)
    RETURNING id AS order_id \\gset
INSERT INTO orders.order_items (order_id, product_id, qty, price_cents)
    VALUES (:order_id, :pid, 1, :price_cents);
UPDATE inventory.products SET stock_qty = stock_qty - 1 WHERE id = :pid;
COMMIT;
"""


def pgbench(
    bin_dir: Path,
    admin_url: str,
    script: str,
    *,
    target: str,
    workload: str,
    concurrency: int,
    seconds: float,
    workdir: Path,
    count_orders: "OrderCounter",
) -> Measurement:
    tag = f"{target}-{workload}-{concurrency}"
    script_path = workdir / f"{tag}.sql"
    script_path.write_text(script)
    log_dir = workdir / f"log-{tag}"
    shutil.rmtree(log_dir, ignore_errors=True)  # a previous round's logs
    log_dir.mkdir()
    url = urlsplit(plain_url(admin_url))
    before = count_orders()
    cpu = children_cpu()
    began = time.perf_counter()
    completed = subprocess.run(
        [
            str(bin_dir / "pgbench"),
            "-n",
            "-M",
            "prepared",
            "-c",
            str(concurrency),
            "-j",
            str(min(concurrency, NCPU)),
            "-T",
            str(max(1, round(seconds))),
            "-f",
            str(script_path),
            "-l",
            f"--log-prefix={log_dir}/tx",
            "-h",
            url.hostname or "127.0.0.1",
            "-p",
            str(url.port or 5432),
            "-U",
            url.username or "postgres",
            url.path.lstrip("/"),
        ],
        env={**os.environ, **({"PGPASSWORD": url.password} if url.password else {})},
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        check=False,
    )
    wall = time.perf_counter() - began
    cpu_used = children_cpu() - cpu
    created = count_orders() - before
    latencies: list[float] = []
    for log in log_dir.iterdir():
        for line in log.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 3 and fields[2].isdigit():
                latencies.append(int(fields[2]) / 1000)
    latencies.sort()
    failed = re.search(r"number of failed transactions: (\d+)", completed.stdout)
    processed = re.search(r"number of transactions actually processed: (\d+)", completed.stdout)
    duration = re.search(r"duration: (\d+) s", completed.stdout)
    errors = int(failed.group(1)) if failed else 0
    if completed.returncode != 0:
        errors += 1
    run_seconds = float(duration.group(1)) if duration else wall
    return Measurement(
        target=target,
        workload=workload,
        concurrency=concurrency,
        generator="pgbench",
        seconds=run_seconds,
        requests=int(processed.group(1)) if processed else len(latencies),
        orders_created=created,
        errors=errors,
        ops=created / run_seconds if run_seconds else 0.0,
        p50_ms=quantile(latencies, 50),
        p99_ms=quantile(latencies, 99),
        generator_cpu_pct=100 * cpu_used / (wall * NCPU),
        note="" if completed.returncode == 0 else completed.stderr.strip()[-300:],
    )


# --- wrk ---

WRK_SCRIPT = """
-- Written by lockstock's bench: POST {path}, product id hot or random, percentiles out as one JSON line.
local counter = 1
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end
function init(args)
  math.randomseed(os.time() * 1000 + tid)
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
{headers}local body = [[{body}]]
function request()
  local pid = {pick}
  return wrk.format(nil, "{path}", nil, string.format(body, pid))
end
function done(summary, latency, requests)
  io.write(string.format(
    'WRK_JSON {{"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status,
    summary.errors.timeout))
end
"""

ORDER_BODY = '{"items":[{"productId":%d,"qty":1}]}'
GRAPHQL_BODY = (
    '{"query":"mutation($p: ID!) { placeOrder(input: {items: [{productId: $p, qty: 1}]}) '
    '{ order { id status } errors { code } } }","variables":{"p":"%d"}}'
)


def wrk_available() -> str | None:
    return shutil.which("wrk")


@dataclass(frozen=True)
class HttpTarget:
    name: str  # orders-http | gateway-graphql
    base_url: str
    path: str
    body: str  # printf template with one %d: the product id
    headers: dict[str, str] = field(default_factory=dict)  # e.g. a service credential


def wrk(
    target: HttpTarget,
    *,
    workload: str,
    products: tuple[int, int],
    concurrency: int,
    seconds: float,
    workdir: Path,
    count_orders: "OrderCounter",
) -> Measurement:
    low, high = products
    pick = str(low) if workload == "hot" else f"math.random({low}, {high})"
    headers = "".join(f'wrk.headers["{name}"] = "{value}"\n' for name, value in target.headers.items())
    script = WRK_SCRIPT.format(path=target.path, body=target.body, pick=pick, headers=headers)
    script_path = workdir / f"{target.name}-{workload}-{concurrency}.lua"
    script_path.write_text(script)
    before = count_orders()
    cpu = children_cpu()
    began = time.perf_counter()
    completed = subprocess.run(
        [
            "wrk",
            "-t",
            str(min(concurrency, NCPU)),
            "-c",
            str(concurrency),
            "-d",
            f"{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(script_path),
            target.base_url,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
    )
    wall = time.perf_counter() - began
    cpu_used = children_cpu() - cpu
    created = count_orders() - before
    match = re.search(r"WRK_JSON (\{.*\})", completed.stdout)
    if match is None:
        raise RuntimeError(f"wrk said: {completed.stdout[-500:]} {completed.stderr[-500:]}")
    data = json.loads(match.group(1))
    run_seconds = data["duration_us"] / 1e6
    socket_errors = sum(data[key] for key in ("connect", "read", "write", "timeout"))
    # A 200 GraphQL reply can still carry a refusal in its payload: an order that was not created is an error.
    # (Requests still in flight when wrk stops may complete uncounted, so only a shortfall counts.)
    shortfall = max(0, data["requests"] - created - data["status"])
    return Measurement(
        target=target.name,
        workload=workload,
        concurrency=concurrency,
        generator="wrk",
        seconds=run_seconds,
        requests=data["requests"],
        orders_created=created,
        errors=socket_errors + data["status"] + shortfall,
        ops=min(created, data["requests"]) / run_seconds if run_seconds else 0.0,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        generator_cpu_pct=100 * cpu_used / (wall * NCPU),
    )


def python_generator(
    target: HttpTarget,
    *,
    workload: str,
    products: tuple[int, int],
    concurrency: int,
    seconds: float,
    workdir: Path,
    count_orders: "OrderCounter",
) -> Measurement:
    """The fallback: asyncio + httpx. It shares the CPU with the apps and is slower than wrk; labelled."""
    low, high = products

    async def run() -> tuple[list[float], int, int, float]:
        latencies: list[float] = []
        errors = 0
        requests = 0
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=target.base_url, limits=limits, timeout=10) as client:
            stop_at = time.perf_counter() + seconds

            async def worker() -> None:
                nonlocal errors, requests
                while time.perf_counter() < stop_at:
                    pid = low if workload == "hot" else random.randint(low, high)
                    began = time.perf_counter()
                    try:
                        response = await client.post(
                            target.path,
                            content=target.body % pid,
                            headers={"Content-Type": "application/json", **target.headers},
                        )
                        if response.status_code >= 400:
                            errors += 1
                    except httpx.HTTPError:
                        errors += 1
                    requests += 1
                    latencies.append((time.perf_counter() - began) * 1000)

            began = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return latencies, errors, requests, time.perf_counter() - began

    before = count_orders()
    cpu = self_cpu()
    latencies, errors, requests, wall = asyncio.run(run())
    cpu_used = self_cpu() - cpu
    created = count_orders() - before
    latencies.sort()
    return Measurement(
        target=target.name,
        workload=workload,
        concurrency=concurrency,
        generator="python-asyncio (fallback)",
        seconds=wall,
        requests=requests,
        orders_created=created,
        errors=errors + max(0, requests - created - errors),
        ops=created / wall if wall else 0.0,
        p50_ms=quantile(latencies, 50),
        p99_ms=quantile(latencies, 99),
        generator_cpu_pct=100 * cpu_used / (wall * NCPU),
    )


class OrderCounter:
    """``count_orders()``: how many orders exist now (one short-lived connection per call)."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url

    def __call__(self) -> int:
        from bench.system import run_sql

        (count,) = run_sql(self.admin_url, "SELECT count(*) FROM orders.orders")
        return int(count)
