import os

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from servicekit.db import asyncpg_url
from servicekit.sync import run_sync


def _url() -> str:
    url = context.config.get_main_option("sqlalchemy.url") or os.environ.get(
        "LOCKSTOCK_MIGRATE_URL", os.environ.get("DATABASE_URL", "")
    )
    if not url:
        raise SystemExit("Set DATABASE_URL (a role that may create schemas and roles) to migrate.")
    return asyncpg_url(url)


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(_url(), poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


run_sync(_run_async())
