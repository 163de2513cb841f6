"""Idempotency keys kept in PostgreSQL, after Stripe and the IETF Idempotency-Key draft.

A key is claimed with one INSERT … ON CONFLICT. The first request to claim it runs; its response (status,
content type and exact bytes) is stored and replayed to every later request with the same key and the same
payload. The same key with another payload is refused (422); the same key while the first request still runs
is refused (409, Retry-After). A request that fails before anything was decided releases its key, so it can
be retried. Keys expire after a TTL and are pruned.

Each service keeps its own table of this shape (see the migrations):
  key text PK, fingerprint text, state text ('in_flight'|'done'), response_status int,
  response_content_type text, response_body bytea, created_at timestamptz, locked_at timestamptz
"""

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from fastapi import Request
from prometheus_client import Counter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.responses import Response

from servicekit.errors import AppError, app_error_response

log = structlog.get_logger()

MAX_KEY_LENGTH = 255
REPLAYED_HEADER = "Idempotent-Replayed"

IDEMPOTENT_REPLAYS = Counter(
    "lockstock_idempotent_replays",
    "Requests answered with the stored response of an earlier request with the same Idempotency-Key.",
    ["table"],
)


class IdempotencyKeyInvalid(AppError):
    status = 400
    code = "idempotency_key_invalid"
    title = "Invalid Idempotency-Key"


class IdempotencyKeyMissing(AppError):
    status = 400
    code = "idempotency_key_missing"
    title = "Idempotency-Key required"


class IdempotencyKeyReused(AppError):
    status = 422
    code = "idempotency_key_reused"
    title = "Idempotency-Key reused with another request"


class IdempotencyKeyInUse(AppError):
    status = 409
    code = "idempotency_key_in_use"
    title = "Idempotency-Key in use"


@dataclass(frozen=True)
class StoredResponse:
    status: int
    content_type: str
    body: bytes

    def replay(self) -> Response:
        return Response(
            content=self.body,
            status_code=self.status,
            media_type=self.content_type,
            headers={REPLAYED_HEADER: "true"},
        )


@dataclass(frozen=True)
class Claim:
    key: str
    recovered: bool  # True when a stale in-flight claim (its process died) was taken over


def validate_key(key: str | None, *, required: bool) -> str | None:
    if key is None:
        if required:
            raise IdempotencyKeyMissing(
                "Send an Idempotency-Key header (up to 255 characters) with this request."
            )
        return None
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise IdempotencyKeyInvalid(
            f"The Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters; got {len(key)}."
        )
    return key


def fingerprint(method: str, path: str, payload: Any) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


class IdempotencyStore:
    def __init__(
        self,
        engine: AsyncEngine,
        table: str,
        *,
        ttl: timedelta = timedelta(hours=24),
        lease: timedelta = timedelta(seconds=60),
    ) -> None:
        self._engine = engine
        self._table = table  # a trusted, schema-qualified name from the service's code, never from input
        self._ttl = ttl
        self._lease = lease

    async def claim(self, key: str, request_fingerprint: str) -> Claim | StoredResponse:
        """Claim ``key`` for this request, or return the stored response to replay, or refuse."""
        async with self._engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            for _ in range(3):
                # An expired key (older than the TTL, not yet pruned) is taken over as if it were new.
                inserted = await conn.execute(
                    text(
                        f"""
                        INSERT INTO {self._table} AS k (key, fingerprint, state, created_at, locked_at)
                        VALUES (:key, :fp, 'in_flight', now(), now())
                        ON CONFLICT (key) DO UPDATE
                           SET fingerprint = EXCLUDED.fingerprint, state = 'in_flight',
                               response_status = NULL, response_content_type = NULL, response_body = NULL,
                               created_at = now(), locked_at = now()
                         WHERE k.created_at < now() - CAST(:ttl AS interval)
                        RETURNING key
                        """
                    ),
                    {"key": key, "fp": request_fingerprint, "ttl": self._ttl},
                )
                if inserted.first() is not None:
                    return Claim(key, recovered=False)
                row = (
                    await conn.execute(
                        text(
                            f"""
                            SELECT fingerprint, state, response_status, response_content_type, response_body,
                                   locked_at < now() - CAST(:lease AS interval) AS stale
                              FROM {self._table} WHERE key = :key
                            """
                        ),
                        {"key": key, "lease": self._lease},
                    )
                ).first()
                if row is None:
                    continue  # released or pruned between the two statements: claim again
                if row.fingerprint != request_fingerprint:
                    raise IdempotencyKeyReused(
                        "This Idempotency-Key was already used with a different request; use a new key."
                    )
                if row.state == "done":
                    return StoredResponse(row.response_status, row.response_content_type, row.response_body)
                if row.stale:
                    taken = await conn.execute(
                        text(
                            f"""
                            UPDATE {self._table} SET locked_at = now()
                             WHERE key = :key AND state = 'in_flight'
                               AND locked_at < now() - CAST(:lease AS interval)
                            RETURNING key
                            """
                        ),
                        {"key": key, "lease": self._lease},
                    )
                    if taken.first() is not None:
                        log.warning("idempotency_key_recovered", key=key)
                        return Claim(key, recovered=True)
                raise IdempotencyKeyInUse(
                    "A request with this Idempotency-Key is still being processed; retry shortly.",
                    headers={"Retry-After": "1"},
                )
        raise IdempotencyKeyInUse(
            "The Idempotency-Key is contended; retry shortly.", headers={"Retry-After": "1"}
        )

    @property
    def table(self) -> str:
        return self._table

    async def complete(self, key: str, response: Response) -> None:
        async with self._engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(
                text(
                    f"""
                    UPDATE {self._table}
                       SET state = 'done', response_status = :status, response_content_type = :ctype,
                           response_body = :body
                     WHERE key = :key
                    """
                ),
                {
                    "key": key,
                    "status": response.status_code,
                    "ctype": response.media_type or "application/json",
                    "body": bytes(response.body),
                },
            )

    async def release(self, key: str) -> None:
        async with self._engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(
                text(f"DELETE FROM {self._table} WHERE key = :key AND state = 'in_flight'"), {"key": key}
            )

    async def prune(self) -> int:
        async with self._engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            result = await conn.execute(
                text(
                    f"DELETE FROM {self._table}"
                    " WHERE created_at < now() - CAST(:ttl AS interval) AND state = 'done'"
                ),
                {"ttl": self._ttl},
            )
            return int(result.rowcount or 0)


async def run_idempotently(
    store: IdempotencyStore,
    request: Request,
    key: str | None,
    payload: Any,
    handler: Callable[[Claim | None], Awaitable[Response]],
) -> Response:
    """Run ``handler`` at most once per key. Without a key it simply runs.

    Final refusals (``AppError.final``) are stored like successes; any other error releases the key.
    """
    if key is None:
        return await handler(None)
    outcome = await store.claim(key, fingerprint(request.method, request.url.path, payload))
    if isinstance(outcome, StoredResponse):
        IDEMPOTENT_REPLAYS.labels(store.table).inc()
        log.info("idempotent_replay", key=key, status=outcome.status)
        return outcome.replay()
    try:
        response = await handler(outcome)
    except AppError as exc:
        if not exc.final:
            await store.release(key)
            raise
        response = app_error_response(exc)
    except BaseException:
        await store.release(key)
        raise
    await store.complete(key, response)
    return response


async def prune_periodically(store: IdempotencyStore, every_s: float) -> None:
    """Prune expired keys every ``every_s`` seconds, for as long as the app runs (start it as a task)."""
    while True:
        await asyncio.sleep(every_s)
        try:
            pruned = await store.prune()
            if pruned:
                log.info("idempotency_keys_pruned", count=pruned)
        except Exception:  # a failed prune is retried next period; it must not kill the loop
            log.exception("idempotency_prune_failed")
