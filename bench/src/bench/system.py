"""The system under test, all of it private to one bench run: its own embedded PostgreSQL in a temp dir, its
own migrated database, and the apps as uvicorn subprocesses on free loopback ports (never the default ones).
"""

import asyncio
import importlib.util
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.load import GRAPHQL_BODY, ORDER_BODY, HttpTarget
from devstack.embedded import EmbeddedPostgres, free_port
from lockstock_db import database
from lockstock_db.credentials import CALLING_APPS, credential_environment
from servicekit.db import plain_url


async def sql(url: str, *statements: str) -> list[Any]:
    conn = await asyncpg.connect(plain_url(url))
    try:
        return [await conn.fetchval(statement) for statement in statements]
    finally:
        await conn.close()


def run_sql(url: str, *statements: str) -> list[Any]:
    return asyncio.run(sql(url, *statements))


@dataclass
class App:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    processes: int = 1  # uvicorn worker processes (more than 1: a supervisor forks them)
    placement: str = ""  # orders only: ORDERS_PLACEMENT

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def wait_healthy(app: App, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if app.process.poll() is not None:
            raise RuntimeError(f"{app.name} exited: {app.log.read_text(errors='replace')[-1500:]}")
        try:
            if httpx.get(f"{app.url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{app.name} did not become healthy in {timeout:.0f} s")


@dataclass
class System:
    """Everything one bench run starts; ``close()`` stops and deletes it all."""

    durable: bool = True
    pool_size: int = 40
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="lsbench-")))
    postgres: EmbeddedPostgres | None = None
    admin_url: str = ""
    service_urls: dict[str, str] = field(default_factory=dict)
    apps: dict[str, App] = field(default_factory=dict)
    gateway_problem: str | None = None
    # The bench's own service credentials (its stack is its own: `task up`'s file is not read).
    tokens: dict[str, str] = field(
        default_factory=lambda: {app: secrets.token_urlsafe(32) for app in CALLING_APPS}
    )
    _stack: ExitStack = field(default_factory=ExitStack)

    def start_database(self) -> None:
        self.postgres = EmbeddedPostgres(
            self.workdir / "pg", free_port(), durable=self.durable, max_connections=300
        )
        self._stack.callback(self.postgres.destroy)
        server_url = self.postgres.start()
        self.admin_url = database.ensure_database(server_url, "lockstock")
        database.migrate(self.admin_url)
        passwords = {role: secrets.token_urlsafe(16) for role in database.SERVICE_ROLES.values()}
        database.apply_role_passwords(self.admin_url, passwords)
        self.service_urls = database.service_database_urls(self.admin_url, passwords)
        self.passwords = passwords

    @property
    def gateway_headers(self) -> dict[str, str]:
        """What the HTTP generator sends to orders: the gateway's credential, as the gateway would."""
        return {"Authorization": f"Bearer {self.tokens['gateway']}"}

    def http_target(self, name: str, app_key: str) -> HttpTarget:
        """What wrk drives on app ``app_key``: placeOrder over GraphQL on a gateway (it needs no credential:
        the shop's callers send none), POST /orders with the gateway's credential on an orders app."""
        gateway = app_key.startswith("gateway")
        return HttpTarget(
            name,
            self.apps[app_key].url,
            "/graphql" if gateway else "/orders",
            GRAPHQL_BODY if gateway else ORDER_BODY,
            {} if gateway else self.gateway_headers,
        )

    def extra_database(self, name: str) -> dict[str, str]:
        """Another migrated database in the same cluster; returns its service URLs (and "admin")."""
        assert self.postgres is not None
        admin_url = database.ensure_database(self.postgres.admin_url(), name)
        database.migrate(admin_url)
        database.apply_role_passwords(admin_url, self.passwords)
        return {"admin": admin_url, **database.service_database_urls(admin_url, self.passwords)}

    def start_app(
        self, name: str, module: str, env: dict[str, str], key: str | None = None, processes: int = 1
    ) -> App:
        port = free_port()
        log = self.workdir / f"{key or name}.log"
        workers = ["--workers", str(processes)] if processes > 1 else []
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                f"{module}:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                *workers,
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            env={**os.environ, **credential_environment(self.tokens), **env},
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        app = App(name, f"http://127.0.0.1:{port}", process, log, processes=processes)
        self.apps[key or name] = app
        self._stack.callback(app.stop)
        wait_healthy(app)
        if processes > 1:
            wait_for_workers(app)
        return app

    def start_services(self, *, want_gateway: bool = True, processes: Sequence[int] = (1,)) -> None:
        """Inventory; orders as one process (placement batched, and single for comparison) and as each other
        count in ``processes``; a gateway for each count, in front of the orders app with as many processes.
        Keys: orders, orders-single, orders-2p, …; gateway, gateway-2p, …"""
        quiet = {"LOG_LEVEL": "WARNING"}

        def pool(workers: int) -> dict[str, str]:
            # The load is shared by the workers; each needs its share of the connections, not all of them.
            return {"DB_POOL_SIZE": str(-(-self.pool_size // workers) + 4), "DB_MAX_OVERFLOW": "10"}

        self.start_app(
            "inventory",
            "inventory.app",
            prefixed("INVENTORY_", {**quiet, **pool(1), "DATABASE_URL": self.service_urls["inventory"]}),
        )
        orders_apps = [("orders", 1, "batched"), ("orders-single", 1, "single")]
        orders_apps += [(f"orders-{n}p", n, "batched") for n in processes if n > 1]
        for key, workers, placement in orders_apps:
            app = self.start_app(
                "orders",
                "orders.app",
                prefixed(
                    "ORDERS_",
                    {
                        **quiet,
                        **pool(workers),
                        "DATABASE_URL": self.service_urls["orders"],
                        "PLACEMENT": placement,
                        # capture is not benchmarked; point payments at a port nobody listens on
                        "PAYMENTS_URL": f"http://127.0.0.1:{free_port()}",
                    },
                ),
                key=key,
                processes=workers,
            )
            app.placement = placement
        if not want_gateway:
            self.gateway_problem = "skipped (--no-gateway)"
            return
        if importlib.util.find_spec("gateway") is None or importlib.util.find_spec("gateway.app") is None:
            self.gateway_problem = "the gateway package has no gateway.app"
            return
        if "gateway" not in self.service_urls:
            self.gateway_problem = "no gateway_svc role (its migration is missing)"
            return
        for workers in processes:
            suffix = "" if workers == 1 else f"-{workers}p"
            try:
                self.start_app(
                    "gateway",
                    "gateway.app",
                    prefixed(
                        "GATEWAY_",
                        {
                            **quiet,
                            "DATABASE_URL": self.service_urls["gateway"],
                            "INVENTORY_URL": self.apps["inventory"].url,
                            "ORDERS_URL": self.apps[f"orders{suffix}"].url,
                            "PAYMENTS_URL": f"http://127.0.0.1:{free_port()}",
                            "JWT_SECRET": secrets.token_urlsafe(32),
                            "UPSTREAM_MAX_CONNECTIONS": "200",
                            "RATE_LIMIT_PLACE_ORDER": "100000000/minute",
                            "RATE_LIMIT_OPERATION": "100000000/minute",
                            "GRAPHIQL": "false",
                        },
                    ),
                    key=f"gateway{suffix}",
                    processes=workers,
                )
            except RuntimeError as exc:
                self.gateway_problem = f"did not start: {str(exc)[-300:]}"
                return

    def rss_mb(self) -> dict[str, list[float]]:
        """Each app's resident memory now, per process (a multi-process app: its supervisor first)."""
        return {
            key: [round(rss_kb(pid) / 1024, 1) for pid in process_tree(app.process.pid)]
            for key, app in self.apps.items()
        }

    def close(self) -> None:
        self._stack.close()
        if self.postgres is not None:
            import shutil

            shutil.rmtree(self.workdir, ignore_errors=True)


def process_tree(pid: int) -> list[int]:
    """The process and its descendants (uvicorn's supervisor and its workers), parents first."""
    found = [pid]
    for parent in found:
        try:
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            continue
        found += [int(child) for child in children]
    return found


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def wait_for_workers(app: App, timeout: float = 60) -> None:
    """A multi-process app answers once its first worker is up; wait until all of them are."""
    deadline = time.monotonic() + timeout
    while len(process_tree(app.process.pid)) < app.processes + 1:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{app.name}: fewer than {app.processes} workers after {timeout:.0f} s")
        time.sleep(0.1)
    wait_healthy(app, timeout)


def prefixed(prefix: str, values: dict[str, str]) -> dict[str, str]:
    return {f"{prefix}{key}": value for key, value in values.items()}
