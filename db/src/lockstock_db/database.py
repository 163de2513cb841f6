"""Migrate, seed, reset, and the per-service role URLs."""

import json
import secrets
from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config

from servicekit.db import asyncpg_url, plain_url, with_database, with_user
from servicekit.sync import run_sync

MIGRATIONS = Path(__file__).parent / "migrations"

# service name -> its login role. A role that a migration has not created yet is skipped.
SERVICE_ROLES = {
    "inventory": "inventory_svc",
    "orders": "orders_svc",
    "payments": "payments_svc",
    "gateway": "gateway_svc",
    "notifications": "notifications_svc",
}

SEED_PRODUCTS = [
    ("Mug", 1_200, 25),
    ("T-shirt", 2_500, 40),
    ("Sticker pack", 400, 200),
    ("Notebook", 900, 60),
    ("Water bottle", 1_800, 30),
    ("Tote bag", 1_500, 3),
]


def migrate(admin_url: str, revision: str = "heads") -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", asyncpg_url(admin_url).replace("%", "%%"))
    command.upgrade(config, revision)


async def _execute(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(plain_url(url))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def ensure_database(server_url: str, name: str) -> str:
    """Create database ``name`` on the server if missing; returns its URL."""

    async def run() -> None:
        conn = await asyncpg.connect(plain_url(server_url))
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    run_sync(run())
    return with_database(plain_url(server_url), name)


def seed(admin_url: str) -> None:
    """Insert the demo catalogue; products that exist by name are left as they are, so it is safe to rerun."""

    async def run() -> None:
        conn = await asyncpg.connect(plain_url(admin_url))
        try:
            await conn.executemany(
                """
                INSERT INTO inventory.products (name, price_cents, stock_qty)
                SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM inventory.products WHERE name = $1)
                """,
                SEED_PRODUCTS,
            )
        finally:
            await conn.close()

    run_sync(run())


def reset(admin_url: str) -> None:
    """Drop every lockstock schema and the migration history (roles stay: they are cluster-wide)."""
    run_sync(
        _execute(
            admin_url,
            "DROP SCHEMA IF EXISTS notifications, outbox, orders, inventory, payments, auth CASCADE",
            "DROP TABLE IF EXISTS public.alembic_version",
        )
    )


def role_passwords(path: Path) -> dict[str, str]:
    """Generated once per data folder, so the apps can log in as their own roles on any server."""
    if path.exists():
        stored: dict[str, str] = json.loads(path.read_text())
    else:
        stored = {}
    missing = {role: secrets.token_urlsafe(24) for role in SERVICE_ROLES.values() if role not in stored}
    if missing:
        stored |= missing
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(stored, indent=2))
        path.chmod(0o600)
    return stored


def apply_role_passwords(admin_url: str, passwords: dict[str, str]) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(plain_url(admin_url))
        try:
            existing = {r["rolname"] for r in await conn.fetch("SELECT rolname FROM pg_roles")}
            for role, password in passwords.items():
                if role in existing:
                    quoted = password.replace("'", "''")
                    await conn.execute(f"ALTER ROLE {role} PASSWORD '{quoted}'")
        finally:
            await conn.close()

    run_sync(run())


def service_database_urls(admin_url: str, passwords: dict[str, str]) -> dict[str, str]:
    """``{"inventory": "postgresql+asyncpg://inventory_svc:…@host/db", …}``"""
    return {
        service: asyncpg_url(with_user(plain_url(admin_url), role, passwords.get(role)))
        for service, role in SERVICE_ROLES.items()
    }
