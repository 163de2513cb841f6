"""A real pgbouncer (Debian's, 1.18) in transaction mode in front of a PostgreSQL, on a loopback port.

The test suite starts one in front of its embedded PostgreSQL to run the order and idempotency scenarios
through it; ``config()`` is also what compose and the manifests mirror. pgbouncer refuses to run as root, so
as root it runs as the embedded PostgreSQL's system user, like the server itself.
"""

import csv
import os
import pwd
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from devstack.embedded import SYSTEM_USER, EmbeddedPostgres, free_port
from devstack.serverprocess import ServerProcess

PGBOUNCER = "/usr/sbin/pgbouncer"
ADMIN_USER = "pgbouncer_admin"


def _quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def config(
    *,
    listen_port: int,
    server_host: str,
    server_port: int,
    auth_file: str,
    lock_timeout_ms: int = 5_000,
    statement_timeout_ms: int = 15_000,
    default_pool_size: int = 20,
    max_client_conn: int = 1_000,
    log_dir: str | None = None,
) -> str:
    """pgbouncer.ini for transaction pooling in front of one server; every database name passes through.

    ``connect_query`` sets the lock and statement timeouts on each server connection, because behind the
    pooler the apps cannot send them as startup parameters (servicekit.db.connect_args)."""
    connect_query = f"SET lock_timeout = {lock_timeout_ms}; SET statement_timeout = {statement_timeout_ms}"
    lines = [
        "[databases]",
        f"* = host={server_host} port={server_port} connect_query='{connect_query}'",
        "",
        "[pgbouncer]",
        "listen_addr = 127.0.0.1",
        f"listen_port = {listen_port}",
        "unix_socket_dir =",
        "pool_mode = transaction",
        "auth_type = scram-sha-256",
        f"auth_file = {auth_file}",
        f"admin_users = {ADMIN_USER}",
        f"stats_users = {ADMIN_USER}",
        f"default_pool_size = {default_pool_size}",
        f"max_client_conn = {max_client_conn}",
        # Transaction mode never resets a server connection between clients: nothing may be left on it.
        "server_reset_query =",
        # JDBC and some drivers send it; harmless to drop.
        "ignore_startup_parameters = extra_float_digits",
        "server_check_query = select 1",
    ]
    if log_dir:
        lines += [f"logfile = {log_dir}/pgbouncer.log", f"pidfile = {log_dir}/pgbouncer.pid"]
    return "\n".join(lines) + "\n"


def auth_file_text(passwords: dict[str, str]) -> str:
    """userlist.txt: one quoted user and plain password a line (pgbouncer derives SCRAM from it)."""
    return "".join(f"{_quote(user)} {_quote(password)}\n" for user, password in sorted(passwords.items()))


def through_pooler(url: str, port: int, host: str = "127.0.0.1") -> str:
    """The same URL (user, password, database) with its host and port those of the pooler."""
    parts = urlsplit(url)
    userinfo, _, _ = parts.netloc.rpartition("@")
    netloc = f"{userinfo}@{host}:{port}" if userinfo else f"{host}:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


class PgBouncer(ServerProcess):
    """Run pgbouncer in the foreground in a temp dir of its own, in front of the server of ``server_url``,
    letting in the users of ``passwords``; ``start()`` returns when it accepts connections."""

    name = "pgbouncer"

    def __init__(
        self,
        server_url: str,
        passwords: dict[str, str],
        *,
        port: int | None = None,
        binary: str = PGBOUNCER,
        default_pool_size: int = 20,
    ) -> None:
        server = urlsplit(server_url)
        self.server_host = server.hostname or "127.0.0.1"
        self.server_port = server.port or 5432
        super().__init__(port or free_port(), Path(tempfile.mkdtemp(prefix="lspgb-")))
        self.binary = binary
        self.admin_password = os.urandom(12).hex()
        self.passwords = passwords | {ADMIN_USER: self.admin_password}
        self.default_pool_size = default_pool_size
        self._run_as = SYSTEM_USER if os.geteuid() == 0 else None

    def show(self, what: str) -> list[dict[str, str]]:
        """``SHOW <what>`` on the admin console (``POOLS``, ``STATS``…), through the embedded PostgreSQL's
        psql: the console speaks only the simple query protocol, which asyncpg does not use."""
        psql = EmbeddedPostgres(self.dir, 0).bin_dir / "psql"
        result = subprocess.run(
            [
                str(psql),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                ADMIN_USER,
                "-d",
                "pgbouncer",
                "--csv",
                "-c",
                f"SHOW {what}",
            ],
            env={**os.environ, "PGPASSWORD": self.admin_password},
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        return list(csv.DictReader(result.stdout.splitlines()))

    def url_for(self, url: str) -> str:
        return through_pooler(url, self.port)

    def start(self) -> "PgBouncer":
        auth_file = self.dir / "userlist.txt"
        auth_file.write_text(auth_file_text(self.passwords))
        ini = self.dir / "pgbouncer.ini"
        ini.write_text(
            config(
                listen_port=self.port,
                server_host=self.server_host,
                server_port=self.server_port,
                auth_file=str(auth_file),
                default_pool_size=self.default_pool_size,
                log_dir=str(self.dir),
            )
        )
        for path in (auth_file, ini):
            path.chmod(0o600)
        if self._run_as is not None:
            entry = pwd.getpwnam(self._run_as)
            for path in (self.dir, auth_file, ini):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self.process = subprocess.Popen(
            [self.binary, str(ini)],
            user=self._run_as,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_until_listening(log=self.dir / "pgbouncer.log")
        return self
