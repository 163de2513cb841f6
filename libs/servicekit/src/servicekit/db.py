"""Engine and the one-transaction-per-request session dependency."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any
from urllib.parse import urlsplit, urlunsplit

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from servicekit.settings import DatabaseSettings


def asyncpg_url(url: str) -> str:
    """Accept the URL forms people paste (postgres://, postgresql://) and name the asyncpg driver."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {url.split('://')[0]}://…")


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def with_user(url: str, user: str, password: str | None = None) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{user}:{password}@{host}" if password else f"{user}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def plain_url(url: str) -> str:
    """asyncpg wants postgresql://, not SQLAlchemy's postgresql+asyncpg://."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def create_engine(settings: DatabaseSettings) -> AsyncEngine:
    return create_async_engine(
        asyncpg_url(settings.database_url),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        connect_args=connect_args(settings),
    )


def connect_args(settings: DatabaseSettings) -> dict[str, Any]:
    """asyncpg's connection arguments: the session settings, and behind a transaction pooler no statement
    that outlives its transaction (docs/adr/0005-pgbouncer-transaction-pooling.md).

    Behind pgbouncer every statement is sent unnamed with both statement caches off: asyncpg then parses it
    again in the same Parse/Bind/Execute/Sync batch that runs it, so it never depends on a server connection
    it may no longer hold, and no named statement is left on a server connection for another client to
    collide with. The lock and statement timeouts cannot travel as startup parameters (pgbouncer 1.18 refuses
    the ones it does not know), so the pooler sets them on its server connections (``connect_query``)."""
    server_settings = {"application_name": settings.service_name}
    if settings.db_pooler == "transaction":
        return {
            "server_settings": server_settings,
            "statement_cache_size": 0,
            "prepared_statement_cache_size": 0,
            "prepared_statement_name_func": _unnamed_statement,
        }
    server_settings |= {
        "lock_timeout": str(settings.db_lock_timeout_ms),
        "statement_timeout": str(settings.db_statement_timeout_ms),
    }
    return {"server_settings": server_settings}


def _unnamed_statement() -> str:
    return ""


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session and one transaction per request: committed if the route returns, rolled back if it raises.

    Services flush, never commit; this is the one place a request's work is committed. ``SessionDep`` uses
    ``scope="function"`` so the commit runs when the route returns, *before* the response is sent: with the
    default request scope FastAPI would send 200 first and commit afterwards, so a failed commit would still
    look like a success (``test_a_failed_commit_is_an_error_response_never_a_success``).
    """
    maker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with maker() as session, session.begin():
        yield session


@asynccontextmanager
async def autocommit(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection outside any request transaction, whose every statement is its own transaction: for
    statements that are each a whole transition (the order, payment and idempotency-key updates)."""
    async with engine.connect() as conn:
        yield await conn.execution_options(isolation_level="AUTOCOMMIT")


async def get_engine(request: Request) -> AsyncEngine:
    # async: FastAPI runs a sync dependency in its thread pool, a cost the order hot path must not pay.
    engine: AsyncEngine = request.app.state.engine
    return engine


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
EngineDep = Annotated[AsyncEngine, Depends(get_engine)]
