"""lockstock-dev, what `task db:*` and `task up` run: the embedded PostgreSQL under .data/."""

import os
import subprocess

from devstack.embedded import free_port, port_is_open


def test_the_cli_runs_its_own_embedded_postgres_and_stops_it(tmp_path):
    """What `task db:migrate` / `db:seed` do on a fresh machine: an embedded cluster under .data, stopped
    afterwards."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "TEST_DATABASE_URL"}}
    env |= {"LOCKSTOCK_DATA_DIR": str(tmp_path / "data"), "LOCKSTOCK_PG_PORT": str(port)}

    def cli(*args: str) -> str:
        done = subprocess.run(["lockstock-dev", *args], env=env, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    cli("migrate")
    cli("seed")
    cli("seed")
    assert not port_is_open(port), "the CLI must stop the embedded server it started"
    url = cli("url").strip()
    assert url.endswith(f":{port}/lockstock")
    assert (tmp_path / "data" / "pg" / "PG_VERSION").exists()
