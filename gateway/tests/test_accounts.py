"""Admin accounts: the CLI behind `task admin:create`, and the dev admin `task up` makes once."""

import asyncio
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import httpx

from devstack.devadmin import prepare_dev_gateway
from gateway import admin
from gateway.settings import GatewaySettings

LOGIN = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token errors { code } } }"


def create_with_cli(database_url: str, *args: str, password: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, GATEWAY_DATABASE_URL=database_url)
    return subprocess.run(
        [sys.executable, "-m", "gateway.admin", "create", *args, "--password-stdin"],
        input=password + "\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_the_cli_creates_an_admin_who_can_sign_in(
    gateway_settings: GatewaySettings, gateway_url: str, db: asyncpg.Connection
) -> None:
    password = "correct horse battery staple"
    made = create_with_cli(gateway_settings.database_url, "--username", "cli-admin", password=password)
    assert made.returncode == 0, made.stderr
    stored = await db.fetchrow("SELECT password_hash, role FROM auth.accounts WHERE username = 'cli-admin'")
    assert stored["role"] == "admin"
    assert stored["password_hash"].startswith("$argon2id$")
    assert password not in stored["password_hash"]
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{gateway_url}/graphql", json={"query": LOGIN, "variables": {"u": "cli-admin", "p": password}}
        )
    assert response.json()["data"]["login"]["token"]


async def test_the_cli_refuses_a_taken_username_and_a_short_password(
    gateway_settings: GatewaySettings, admin_credentials: tuple[str, str], monkeypatch, capsys
) -> None:
    monkeypatch.setenv("GATEWAY_DATABASE_URL", gateway_settings.database_url)

    def run(username: str, password: str) -> int:
        monkeypatch.setattr(sys, "stdin", io.StringIO(password + "\n"))
        return admin.main(["create", "--username", username, "--password-stdin"])

    assert await asyncio.to_thread(run, admin_credentials[0], "a long enough password") == 1
    assert "exists already" in capsys.readouterr().err
    assert await asyncio.to_thread(run, "cli-short", "short") == 2


async def test_the_cli_disables_and_enables_an_account(
    gateway_settings: GatewaySettings, gateway_url: str, db: asyncpg.Connection
) -> None:
    password = "correct horse battery staple"
    assert (
        create_with_cli(gateway_settings.database_url, "--username", "cli-off", password=password).returncode
        == 0
    )
    env = dict(os.environ, GATEWAY_DATABASE_URL=gateway_settings.database_url)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "gateway.admin", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)

    async def token() -> str | None:
        async with httpx.AsyncClient() as http:
            response = await http.post(
                f"{gateway_url}/graphql", json={"query": LOGIN, "variables": {"u": "cli-off", "p": password}}
            )
        found: str | None = response.json()["data"]["login"]["token"]
        return found

    assert await token()
    assert cli("disable", "--username", "cli-off").returncode == 0
    assert await db.fetchval("SELECT disabled_at IS NOT NULL FROM auth.accounts WHERE username = 'cli-off'")
    assert await token() is None
    assert cli("enable", "--username", "cli-off").returncode == 0
    assert await token()
    missing = cli("disable", "--username", "nobody-at-all")
    assert missing.returncode == 1
    assert "no account" in missing.stderr


async def test_task_up_makes_the_dev_secret_and_admin_once(
    tmp_path: Path, gateway_settings: GatewaySettings, db: asyncpg.Connection, capsys
) -> None:
    await db.execute("DELETE FROM auth.accounts WHERE username = 'admin'")
    first = await _prepare(tmp_path, gateway_settings.database_url)
    second = await _prepare(tmp_path, gateway_settings.database_url)
    assert first == second
    assert len(first["GATEWAY_JWT_SECRET"]) >= 32
    stored = json.loads((tmp_path / "gateway-dev.json").read_text())
    assert oct((tmp_path / "gateway-dev.json").stat().st_mode & 0o777) == "0o600"
    assert stored["admin_password"] in capsys.readouterr().out
    assert await db.fetchval("SELECT count(*) FROM auth.accounts WHERE username = 'admin'") == 1


async def _prepare(data_dir: Path, database_url: str) -> dict[str, str]:
    # prepare_dev_gateway runs its own event loop (it is called from the synchronous `task up`).
    return await asyncio.to_thread(prepare_dev_gateway, data_dir, database_url)
