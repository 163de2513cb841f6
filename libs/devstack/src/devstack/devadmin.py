"""What `task up` needs for the gateway on a developer machine: a JWT secret and a dev admin whose
password is generated once (never a default), both kept under the data folder."""

import json
import secrets
from pathlib import Path

from gateway.auth import account_exists, create_account
from gateway.settings import GatewaySettings
from servicekit.db import create_engine
from servicekit.sync import run_sync

DEV_ADMIN = "admin"


def prepare_dev_gateway(data_dir: Path, database_url: str) -> dict[str, str]:
    """Make (once) and return the gateway's dev secrets; ensure the dev admin exists. Returns env vars."""
    path = data_dir / "gateway-dev.json"
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    if not {"jwt_secret", "admin_password"} <= stored.keys():
        stored = {
            "jwt_secret": stored.get("jwt_secret") or secrets.token_urlsafe(48),
            "admin_username": DEV_ADMIN,
            "admin_password": stored.get("admin_password") or secrets.token_urlsafe(18),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(stored, indent=2))
        path.chmod(0o600)

    async def ensure_admin() -> None:
        engine = create_engine(GatewaySettings(database_url=database_url, db_pool_size=1))
        try:
            if not await account_exists(engine, stored["admin_username"]):
                await create_account(engine, stored["admin_username"], stored["admin_password"], "admin")
        finally:
            await engine.dispose()

    run_sync(ensure_admin())
    print(
        f"  gateway admin: username {stored['admin_username']!r}, password {stored['admin_password']!r}"
        f" (kept in {path})",
        flush=True,
    )
    return {"GATEWAY_JWT_SECRET": stored["jwt_secret"]}
