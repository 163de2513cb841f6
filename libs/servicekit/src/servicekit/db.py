"""Engine and the one-transaction-per-request session dependency."""

from collections.abc import AsyncIterator
from typing import Annotated
from urllib.parse import urlsplit, urlunsplit

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

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
        connect_args={
            "server_settings": {
                "application_name": settings.service_name,
                "lock_timeout": str(settings.db_lock_timeout_ms),
                "statement_timeout": str(settings.db_statement_timeout_ms),
            }
        },
    )


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


def get_engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
EngineDep = Annotated[AsyncEngine, Depends(get_engine)]
