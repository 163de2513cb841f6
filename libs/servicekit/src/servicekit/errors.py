"""Domain errors and the one place they become RFC 9457 problem+json responses."""

from typing import Any, ClassVar

import asyncpg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

log = structlog.get_logger()

PROBLEM_JSON = "application/problem+json"

_STATUS_CODES = {
    400: ("bad_request", "Bad request"),
    401: ("unauthenticated", "Unauthenticated"),
    403: (
        "forbidden",
        "Forbidden",
    ),  # a service refusing a caller says caller_not_allowed (servicekit.callers)
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    406: ("not_acceptable", "Not acceptable"),
    409: ("conflict", "Conflict"),
    413: ("payload_too_large", "Payload too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
    422: ("validation_error", "Invalid request"),
    429: ("rate_limited", "Too many requests"),
    500: ("internal_error", "Internal error"),
    503: ("unavailable", "Service unavailable"),
}


class Problem(BaseModel):
    """The problem+json body, documented in every service's OpenAPI."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    code: str
    request_id: str | None = None


class AppError(Exception):
    """Base of every expected failure. Subclasses declare status, code and title once.

    ``final`` marks a refusal that is a decided answer (e.g. insufficient stock): an idempotent request that
    ends in it stores and replays it. Errors that are not final leave the key free for a retry.
    """

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"
    final: ClassVar[bool] = False

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra
        self.headers = headers or {}


class Unavailable(AppError):
    status = 503
    code = "unavailable"
    title = "Service unavailable"


def current_request_id() -> str | None:
    rid = structlog.contextvars.get_contextvars().get("request_id")
    return str(rid) if rid is not None else None


def problem_body(status: int, code: str, title: str, detail: str, /, **extra: Any) -> dict[str, Any]:
    return {
        **extra,
        "type": f"urn:lockstock:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": current_request_id(),
    }


def problem_response(
    status: int, code: str, title: str, detail: str, headers: dict[str, str] | None = None, /, **extra: Any
) -> JSONResponse:
    """Extra members may not reuse the standard ones (type, title, status, detail, code, request_id)."""
    return JSONResponse(
        problem_body(status, code, title, detail, **extra),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def app_error_response(exc: AppError) -> JSONResponse:
    return problem_response(exc.status, exc.code, exc.title, exc.detail, exc.headers, **exc.extra)


def _describe_validation_error(err: dict[str, Any]) -> dict[str, Any]:
    # The offending input is not echoed back: it may be huge or hostile.
    loc = [str(part) for part in err.get("loc", ()) if part != "body"]
    return {"field": ".".join(loc) or None, "message": err.get("msg", "invalid"), "type": err.get("type")}


async def _on_app_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AppError)
    log.info("request_refused", code=exc.code, status=exc.status, detail=exc.detail)
    return app_error_response(exc)


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return problem_response(
            400, "malformed_json", "Malformed JSON", "The request body is not valid JSON."
        )
    described = [_describe_validation_error(dict(e)) for e in errors]
    first = described[0] if described else {"field": None, "message": "invalid"}
    where = f" at '{first['field']}'" if first["field"] else ""
    return problem_response(
        422,
        "validation_error",
        "Invalid request",
        f"{first['message']}{where}.",
        errors=described,
    )


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code, title = _STATUS_CODES.get(exc.status_code, ("error", "Error"))
    detail = exc.detail if isinstance(exc.detail, str) else title
    if exc.status_code == 400 and detail == "There was an error parsing the body":
        # FastAPI's answer to a body it cannot even decode (e.g. not UTF-8).
        return problem_response(
            400, "malformed_json", "Malformed JSON", "The request body is not valid JSON."
        )
    return problem_response(exc.status_code, code, title, detail, dict(exc.headers or {}))


# SQLSTATEs that mean "not now" rather than "never": the same request may succeed a moment later.
# 55P03 lock_not_available and 57014 query_canceled come from lock_timeout and statement_timeout; 40001 and
# 40P01 are serialization failures and deadlocks; class 53 is the server out of connections or memory.
_BUSY_SQLSTATES = {"55P03", "57014", "40001", "40P01"}
# Class 08 is a broken connection; 57P01-57P03 are an admin shutdown, a crash shutdown and a server that
# is starting or stopping ("the database system is starting up").
_DOWN_SQLSTATES = {"57P01", "57P02", "57P03"}

RETRY_AFTER_S = 1


def retryable_database_failure(exc: BaseException) -> str | None:
    """``"database_unavailable"`` when the database cannot be reached (down, restarting, a connection cut),
    ``"database_busy"`` when it refused for load (a lock or statement timeout, a serialization failure, a
    full pool), ``None`` for anything else. Looks through SQLAlchemy's wrapper at the driver's error."""
    if isinstance(exc, PoolTimeout):
        return "database_busy"
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return "database_unavailable"
        return retryable_database_failure(exc.orig) if exc.orig is not None else None
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str):
        if sqlstate in _BUSY_SQLSTATES or sqlstate.startswith("53"):
            return "database_busy"
        if sqlstate in _DOWN_SQLSTATES or sqlstate.startswith("08"):
            return "database_unavailable"
    if isinstance(exc, (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError, TimeoutError)):
        # Refused, reset or timed-out sockets (asyncpg raises them bare while connecting) and a connection
        # the driver already knows is closed.
        return "database_unavailable"
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)):
        return retryable_database_failure(cause)
    return None


class DatabaseUnavailable(Unavailable):
    code = "database_unavailable"
    title = "Database unavailable"


class DatabaseBusy(Unavailable):
    code = "database_busy"
    title = "Database busy"


def database_failure_response(code: str) -> JSONResponse:
    error: Unavailable
    if code == "database_busy":
        error = DatabaseBusy("The database is busy; retry shortly.")
    else:
        error = DatabaseUnavailable("The database cannot be reached right now; retry shortly.")
    error.headers["Retry-After"] = str(RETRY_AFTER_S)
    return app_error_response(error)


async def _on_db_error(request: Request, exc: Exception) -> Response:
    """Every driver failure: retryable ones are a 503 with Retry-After, bad input a 422, the rest a 500."""
    retryable = retryable_database_failure(exc)
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    sqlstate = getattr(orig, "sqlstate", None)
    if retryable is not None:
        log.warning(retryable, sqlstate=sqlstate, error=type(orig).__name__)
        return database_failure_response(retryable)
    if isinstance(sqlstate, str) and sqlstate.startswith("22"):
        # Class 22, data exception: input PostgreSQL refuses (a NUL byte in text, a number out of range) that
        # got past validation. It is the client's input, so a 422, never a 500; validation should catch it
        # first.
        log.warning("database_refused_input", sqlstate=sqlstate)
        return problem_response(
            422, "invalid_input", "Invalid input", "The request contains a value the database cannot store."
        )
    log.exception("database_error", sqlstate=sqlstate)
    return problem_response(500, "internal_error", "Internal error", "An unexpected error occurred.")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _on_app_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    # The driver's and the pool's failures, and the bare socket errors asyncpg raises while connecting.
    for kind in (SQLAlchemyError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError):
        app.add_exception_handler(kind, _on_db_error)


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"content": {PROBLEM_JSON: {"schema": Problem.model_json_schema()}}, "description": title}
    for status, (_, title) in _STATUS_CODES.items()
    if status in {400, 401, 403, 404, 409, 415, 422, 503}
}
