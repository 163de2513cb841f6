"""`task up` with replicas: the plan `lockstock-dev up` runs for LOCKSTOCK_REPLICAS=2, started for real.

Two processes of each of inventory, orders, payments and the gateway under honcho, behind a real haproxy
(Debian's), with the gateways sharing their limits in a real Redis; then orders placed through both orders
processes and both gateways at once. No oversell, stock conserved, and haproxy's own counters show that every
replica took part. Skips only where /usr/sbin/haproxy is missing (CI installs it)."""

import asyncio
import csv
import os
import secrets
import signal
import subprocess
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import asyncpg
import httpx
import pytest

from devstack import replicas
from devstack.embedded import free_port
from devstack.redisserver import REDIS_SERVER, RedisServer
from devstack.testing import wait_for_sync
from lockstock_db.credentials import credential_environment

ROOT = Path(__file__).resolve().parents[2]
APPS = ("inventory", "orders", "payments", "gateway")
PLACE_ORDER = (
    "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { order { id } errors { code } } }"
)


def test_the_plan_keeps_every_url_and_adds_n_backends_per_app() -> None:
    procfile = (ROOT / "Procfile").read_text()
    the_plan = replicas.plan(procfile, 3)

    assert {app.name: app.port for app in the_plan.apps} == {
        "inventory": 8001,
        "orders": 8002,
        "payments": 8003,
        "gateway": 8000,
        "web": 8080,
        "admin": 8081,
        "notifications": 8004,
    }
    orders = next(app for app in the_plan.apps if app.name == "orders")
    assert orders.backends == [18002, 28002, 38002]
    lines = the_plan.procfile(Path("/x/haproxy.cfg")).splitlines()
    assert (
        "orders-2: uvicorn --factory orders.app:create_app --host 127.0.0.1 --port 28002 --no-access-log"
        " --no-proxy-headers" in lines
    )
    assert lines[-1] == f"haproxy: {replicas.HAPROXY} -db -f /x/haproxy.cfg"
    # A line that serves no port (the mail sink) runs once, unchanged.
    assert [line for line in lines if line.startswith("mailsink")] == [
        next(line for line in procfile.splitlines() if line.startswith("mailsink"))
    ]
    config = the_plan.haproxy_config()
    assert "bind 127.0.0.1:8002" in config
    assert "server orders-3 127.0.0.1:38002 check" in config


@pytest.mark.parametrize("raw", ["0", "6", "two", "-1"])
def test_a_bad_replica_count_is_refused(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("LOCKSTOCK_REPLICAS", raw)
    with pytest.raises(SystemExit, match="LOCKSTOCK_REPLICAS"):
        replicas.replicas_from_env()


def haproxy_servers(stats_port: int) -> dict[str, dict[str, str]]:
    response = httpx.get(f"http://127.0.0.1:{stats_port}/stats;csv", timeout=5)
    rows = csv.DictReader(response.text.lstrip("# ").splitlines())
    return {row["svname"]: row for row in rows if row["svname"] not in ("FRONTEND", "BACKEND")}


@pytest.fixture(scope="module")
def replica_run(
    tmp_path_factory: pytest.TempPathFactory,
    service_database_urls: dict[str, str],
    service_tokens: dict[str, str],
) -> Iterator[dict]:
    if not os.path.exists(replicas.HAPROXY):
        message = f"no {replicas.HAPROXY} (apt-get install haproxy): replica tests skipped"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    work = tmp_path_factory.mktemp("replicas")
    procfile = work / "Procfile"
    procfile.write_text(
        "".join(
            line + "\n" for line in (ROOT / "Procfile").read_text().splitlines() if line.split(":")[0] in APPS
        )
    )
    frontends = {app: free_port() for app in APPS}
    backends = {(port, replica): free_port() for port in frontends.values() for replica in (1, 2)}
    stats_port = free_port()
    run_procfile = replicas.write(
        work,
        procfile,
        2,
        frontend_ports=frontends,
        backend_port=lambda port, replica: backends[(port, replica)],
        stats_port=stats_port,
    )
    url = {app: f"http://127.0.0.1:{port}" for app, port in frontends.items()}
    env = dict(os.environ)
    env |= {f"{service.upper()}_DATABASE_URL": db_url for service, db_url in service_database_urls.items()}
    # Every replica its own credential and the ones it accepts, as `task up` hands them (docs/adr/0007);
    # haproxy passes the Authorization header through untouched.
    env |= credential_environment(service_tokens)
    env |= {
        "ORDERS_PAYMENTS_URL": url["payments"],
        "ORDERS_DB_POOL_SIZE": "10",
        "GATEWAY_INVENTORY_URL": url["inventory"],
        "GATEWAY_ORDERS_URL": url["orders"],
        "GATEWAY_PAYMENTS_URL": url["payments"],
        "GATEWAY_JWT_SECRET": secrets.token_urlsafe(32),
        "GATEWAY_RATE_LIMIT_PLACE_ORDER": "100000/minute",
        "GATEWAY_RATE_LIMIT_OPERATION": "1000000/minute",
        "INVENTORY_LOG_LEVEL": "WARNING",
        "ORDERS_LOG_LEVEL": "WARNING",
        "PAYMENTS_LOG_LEVEL": "WARNING",
        "GATEWAY_LOG_LEVEL": "WARNING",
    }
    with RedisServer() if os.path.exists(REDIS_SERVER) else nullcontext() as redis:
        if redis is not None:
            env["GATEWAY_RATE_LIMIT_STORAGE_URI"] = redis.url
        honcho = subprocess.Popen(
            ["honcho", "start", "-f", str(run_procfile), "-d", str(ROOT)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:

            def all_up() -> bool:
                try:
                    servers = haproxy_servers(stats_port)
                    if len(servers) == 2 * len(APPS) and all(s["status"] == "UP" for s in servers.values()):
                        return True
                except httpx.HTTPError:
                    pass
                assert honcho.poll() is None, "honcho exited while starting the replicas"
                return False

            wait_for_sync(
                all_up, within_s=120, what="the replicas all to come up behind haproxy", every_s=0.2
            )
            yield {"url": url, "stats_port": stats_port}
        finally:
            honcho.send_signal(signal.SIGINT)
            try:
                honcho.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(honcho.pid, signal.SIGKILL)
                honcho.wait()


async def test_orders_through_two_orders_processes_and_two_gateways_never_oversell(
    replica_run: dict, db: asyncpg.Connection, make_product, as_gateway: dict[str, str]
) -> None:
    url = replica_run["url"]
    hot = await make_product(stock=10)
    other = await make_product(stock=25)
    before = {name: int(row["stot"]) for name, row in haproxy_servers(replica_run["stats_port"]).items()}

    async with httpx.AsyncClient(timeout=60) as http:

        def rest(lines: list[tuple[int, int]]):
            return http.post(
                f"{url['orders']}/orders",
                json={"items": [{"productId": p, "qty": q} for p, q in lines]},
                headers=as_gateway,
            )

        def graphql(lines: list[tuple[int, int]]):
            variables = {"input": {"items": [{"productId": str(p), "qty": q} for p, q in lines]}}
            return http.post(f"{url['gateway']}/graphql", json={"query": PLACE_ORDER, "variables": variables})

        batch = [[(hot, 1)], [(other, 2), (hot, 1)], [(other, 1)], [(hot, 2), (other, 1)]]
        responses = await asyncio.gather(
            *(rest(batch[i % 4]) for i in range(24)), *(graphql(batch[(i + 1) % 4]) for i in range(24))
        )

    placed_rest = [r for r in responses[:24] if r.status_code == 201]
    assert {r.status_code for r in responses[:24]} <= {201, 409}, [r.text for r in responses[:24]]
    payloads = [r.json()["data"]["placeOrder"] for r in responses[24:]]
    assert all(bool(p["order"]) != bool(p["errors"]) for p in payloads), payloads
    assert {e["code"] for p in payloads for e in p["errors"]} <= {"INSUFFICIENT_STOCK"}
    placed = len(placed_rest) + sum(1 for p in payloads if p["order"])
    assert placed > 0

    for product, start in ((hot, 10), (other, 25)):
        stock = await db.fetchval("SELECT stock_qty FROM inventory.products WHERE id = $1", product)
        sold = await db.fetchval(
            "SELECT coalesce(sum(qty), 0) FROM orders.order_items WHERE product_id = $1", product
        )
        assert stock >= 0
        assert stock + sold == start  # starting stock = stock + units in orders
    assert await db.fetchval("SELECT stock_qty FROM inventory.products WHERE id = $1", hot) == 0

    after = haproxy_servers(replica_run["stats_port"])
    for server in ("orders-1", "orders-2", "gateway-1", "gateway-2"):
        assert int(after[server]["stot"]) > before[server], f"{server} took no part"


def test_task_up_runs_the_replica_procfile_with_a_shared_redis(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if not (os.path.exists(replicas.HAPROXY) and os.path.exists(REDIS_SERVER)):
        pytest.skip("needs haproxy and redis-server")
    from devstack import cli

    monkeypatch.setattr(cli, "DATA_DIR", tmp_path)
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("LOCKSTOCK_REPLICAS", "2")
    env: dict[str, str] = {}
    with cli.replica_run(env) as procfile:
        assert procfile == tmp_path / "Procfile.replicas"
        assert "gateway-2:" in procfile.read_text()
        assert "frontend gateway" in (tmp_path / "haproxy.cfg").read_text()
        redis_url = env["GATEWAY_RATE_LIMIT_STORAGE_URI"]
        port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
        assert port != 6379
        assert port_free(port) is False  # the Redis is up while the apps run

    assert port_free(port) is True  # and gone with them
    monkeypatch.setenv("LOCKSTOCK_REPLICAS", "1")
    with cli.replica_run({}) as plain:
        assert plain == Path("Procfile")


def port_free(port: int) -> bool:
    from devstack.embedded import port_is_open

    return not port_is_open(port)
