"""Which driver and pool failures are retryable: the table behind the kit's 503s (the services' tests show
them over HTTP against a real server that is down, busy or ending connections)."""

import asyncpg
import pytest
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from servicekit.errors import retryable_database_failure

pytestmark = pytest.mark.unit


def _wrapped(orig: BaseException, *, invalidated: bool = False) -> DBAPIError:
    return DBAPIError("SELECT 1", {}, orig, connection_invalidated=invalidated)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("failure", "verdict"),
    [
        (ConnectionRefusedError(111, "refused"), "database_unavailable"),
        (ConnectionResetError(104, "reset"), "database_unavailable"),
        (TimeoutError(), "database_unavailable"),
        (asyncpg.CannotConnectNowError("the database system is starting up"), "database_unavailable"),
        (asyncpg.AdminShutdownError("terminating connection"), "database_unavailable"),
        (asyncpg.ConnectionDoesNotExistError("closed"), "database_unavailable"),
        (asyncpg.InterfaceError("connection is closed"), "database_unavailable"),
        (_wrapped(asyncpg.ConnectionDoesNotExistError("closed")), "database_unavailable"),
        (_wrapped(RuntimeError("gone"), invalidated=True), "database_unavailable"),
        (_wrapped(asyncpg.LockNotAvailableError("lock timeout")), "database_busy"),
        (_wrapped(asyncpg.QueryCanceledError("statement timeout")), "database_busy"),
        (_wrapped(asyncpg.SerializationError("serialize")), "database_busy"),
        (_wrapped(asyncpg.DeadlockDetectedError("deadlock")), "database_busy"),
        (_wrapped(asyncpg.TooManyConnectionsError("too many")), "database_busy"),
        (PoolTimeout("QueuePool limit reached"), "database_busy"),
        (_wrapped(asyncpg.UniqueViolationError("duplicate")), None),
        (_wrapped(asyncpg.CharacterNotInRepertoireError("NUL")), None),
        (ValueError("a bug"), None),
    ],
)
def test_retryable_failures_are_told_apart_from_the_rest(failure: BaseException, verdict: str | None) -> None:
    assert retryable_database_failure(failure) == verdict
