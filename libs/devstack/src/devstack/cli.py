"""lockstock-dev: `task up` (database + every app) and the `task db:*` commands on a developer machine.

With DATABASE_URL set, every command uses that server (the URL's role must be able to create schemas and
roles). Without it, they use the embedded PostgreSQL kept under .data/ on port LOCKSTOCK_PG_PORT (54329).
The database commands themselves are lockstock-db's (lockstock_db.cli); this adds the embedded server,
the dev secrets and the process runner, which production images never carry.
"""

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devstack import replicas
from devstack.devadmin import prepare_dev_gateway
from devstack.embedded import EmbeddedPostgres
from lockstock_db import cli as db_cli
from lockstock_db import database
from lockstock_db.credentials import credential_environment, service_credentials

DATA_DIR = Path(os.environ.get("LOCKSTOCK_DATA_DIR", ".data"))
PG_PORT = int(os.environ.get("LOCKSTOCK_PG_PORT", "54329"))
DATABASE_NAME = "lockstock"

APP_URLS = {
    "inventory": "http://127.0.0.1:8001",
    "orders": "http://127.0.0.1:8002",
    "payments": "http://127.0.0.1:8003",
    "notifications": "http://127.0.0.1:8004",
    "mailsink": "smtp://127.0.0.1:8025 (each email is printed in the mailsink lines)",
    "gateway": "http://127.0.0.1:8000/graphql",
    "web shop": "http://127.0.0.1:8080",
    "admin": "http://127.0.0.1:8081",
}


@contextmanager
def admin_database(*, keep_running: bool = False) -> Iterator[str]:
    """Yield a superuser URL of the lockstock database: DATABASE_URL's, or the embedded one's.

    An embedded server this process started is stopped on exit (unless ``keep_running``); one that was
    already running (another `task up`) is left alone.
    """
    if url := os.environ.get("DATABASE_URL"):
        yield url
        return
    server = EmbeddedPostgres(DATA_DIR / "pg", PG_PORT)
    was_running = server.is_running()
    server_url = server.start()
    try:
        yield database.ensure_database(server_url, DATABASE_NAME)
    finally:
        if not was_running and not keep_running:
            server.stop()


def _app_environment(admin_url: str) -> dict[str, str]:
    passwords = database.role_passwords(DATA_DIR / "role-passwords.json")
    database.apply_role_passwords(admin_url, passwords)
    env = dict(os.environ)
    for service, url in database.service_database_urls(admin_url, passwords).items():
        env.setdefault(f"{service.upper()}_DATABASE_URL", url)
    env.setdefault("LOCKSTOCK_ADMIN_DATABASE_URL", admin_url)
    env.setdefault("LOCKSTOCK_DATA_DIR", str(DATA_DIR.resolve()))
    # The worker mails the Procfile's local sink, and may call webhook receivers on this machine.
    env.setdefault("NOTIFICATIONS_SMTP_URL", "smtp://127.0.0.1:8025")
    env.setdefault("NOTIFICATIONS_WEBHOOKS_ALLOW_PRIVATE", "true")
    env.setdefault("NOTIFICATIONS_ADMIN_EMAIL", "admin@lockstock.local")
    # Each app's own credential and the ones it accepts (docs/adr/0007); the demo reads the same file.
    tokens = service_credentials(DATA_DIR / "service-credentials.json")
    for name, value in credential_environment(tokens).items():
        env.setdefault(name, value)
    return env


def _gateway_dev_environment(env: dict[str, str]) -> dict[str, str]:
    """The gateway's JWT secret and a dev admin with a generated password, made once under .data/.
    An explicit GATEWAY_JWT_SECRET in the environment wins."""
    extra = prepare_dev_gateway(DATA_DIR, env["GATEWAY_DATABASE_URL"])
    return {name: value for name, value in extra.items() if name not in env}


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def up() -> int:
    """Database, migrations, seed data, then every app under honcho until Ctrl-C (or SIGTERM)."""
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    with admin_database() as admin_url:
        print(f"database   {admin_url}", flush=True)
        database.migrate(admin_url)
        database.seed(admin_url)
        env = _app_environment(admin_url)
        env |= _gateway_dev_environment(env)
        with replica_run(env) as procfile:
            print("\nlockstock is starting; Ctrl-C stops everything.\n", flush=True)
            for name, url in APP_URLS.items():
                if _in_procfile(name.split()[0]):
                    print(f"  {name:<10} {url}", flush=True)
            print(flush=True)
            honcho = subprocess.Popen(["honcho", "start", "-f", str(procfile)], env=env)
            try:
                return honcho.wait()
            except KeyboardInterrupt:
                honcho.send_signal(signal.SIGINT)
                honcho.wait()
                print("\nlockstock stopped.", flush=True)
                return 0


@contextmanager
def replica_run(env: dict[str, str]) -> Iterator[Path]:
    """The Procfile to run: the plain one, or with LOCKSTOCK_REPLICAS=N every app N times behind haproxy,
    the gateways sharing their limits in a Redis of their own (unless GATEWAY_RATE_LIMIT_STORAGE_URI is
    set)."""
    count = replicas.replicas_from_env()
    if count == 1:
        yield Path("Procfile")
        return
    procfile = replicas.write(DATA_DIR, Path("Procfile"), count)
    print(f"replicas   {count} of every app behind haproxy ({DATA_DIR / 'haproxy.cfg'})", flush=True)
    if "GATEWAY_RATE_LIMIT_STORAGE_URI" in env:
        yield procfile
        return
    from devstack.redisserver import RedisServer

    with RedisServer() as redis:
        env["GATEWAY_RATE_LIMIT_STORAGE_URI"] = redis.url
        print(f"limits     shared by the gateways in {redis.url}", flush=True)
        yield procfile


def _in_procfile(name: str) -> bool:
    procfile = Path("Procfile")
    return procfile.exists() and any(
        line.split(":", 1)[0].strip() == name for line in procfile.read_text().splitlines()
    )


def main(argv: list[str] | None = None) -> int:
    extra = {"up": "start the database and every app (what `task up` runs)"}
    args = db_cli.parser("lockstock-dev", __doc__, extra).parse_args(argv)
    if args.command == "up":
        return up()
    with admin_database() as admin_url:
        return db_cli.run(args.command, admin_url)


if __name__ == "__main__":
    sys.exit(main())
