"""Idempotency keys kept in PostgreSQL, after Stripe and the IETF Idempotency-Key draft.

A key is claimed with one INSERT … ON CONFLICT. The first request to claim it runs; its response (status,
content type and exact bytes) is stored and replayed to every later request with the same key and the same
payload. The same key with another payload is refused (422); the same key while the first request still runs
is refused (409, Retry-After). A request that fails before anything was decided releases its key, so it can
be retried. Keys expire after a TTL and are pruned.

Leases. A claim holds its key for a lease (60 s). A claim whose lease ran out (its process died mid-request)
is taken over by the next request with the key. Two rules keep a takeover from ever running beside a request
that is still alive: the running request renews its lease every third of it, so only a dead one goes stale;
and every claim carries a fencing token (its ``locked_at``, changed by each claim, takeover and renewal),
which complete and release must present, so a request that lost its key (a pause longer than the lease)
cannot store its answer over, or delete, the claim of the request that took it over. The TTL must be longer
than the lease (checked at start-up), or a key could expire under a running request.

Each service keeps its own table of this shape (see the migrations):
  key text PK, fingerprint text, state text ('in_flight'|'done'), response_status int,
  response_content_type text, response_body bytea, created_at timestamptz, locked_at timestamptz
"""

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any

import structlog
from fastapi import Depends, Header, Request
from prometheus_client import Counter
from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.responses import Response

from servicekit import idempotency_sql as sql
from servicekit.db import autocommit
from servicekit.errors import AppError, app_error_response
from servicekit.rules import MAX_IDEMPOTENCY_KEY, is_idempotency_key

log = structlog.get_logger()

MAX_KEY_LENGTH = MAX_IDEMPOTENCY_KEY
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


@dataclass
class Claim:
    key: str
    recovered: bool  # True when a stale in-flight claim (its process died) was taken over
    # The fencing token: this claim's locked_at. Renewal moves it; complete and release present it.
    token: datetime | None = field(default=None, compare=False)


class LeaseTooLong(ValueError):
    """The idempotency TTL must be longer than the lease, or a key could expire under a running request."""


def check_lease(ttl: timedelta, lease: timedelta) -> None:
    if lease <= timedelta(0):
        raise LeaseTooLong(f"the idempotency lease must be positive; got {lease}")
    if ttl <= lease:
        raise LeaseTooLong(f"the idempotency TTL ({ttl}) must be longer than its lease ({lease})")


def validate_key(key: str | None, *, required: bool) -> str | None:
    if key is None:
        if required:
            raise IdempotencyKeyMissing(
                "Send an Idempotency-Key header (up to 255 characters) with this request."
            )
        return None
    if not is_idempotency_key(key):
        raise IdempotencyKeyInvalid(
            f"The Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters; got {len(key)}."
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
        check_lease(ttl, lease)
        self._engine = engine
        self._table = table  # a trusted, schema-qualified name from the service's code, never from input
        self._ttl = ttl
        self._lease = lease

    @property
    def lease(self) -> timedelta:
        return self._lease

    async def claim(self, key: str, request_fingerprint: str) -> Claim | StoredResponse:
        """Claim ``key`` for this request, or return the stored response to replay, or refuse."""
        async with autocommit(self._engine) as conn:
            for _ in range(3):
                # An expired key (older than the TTL, not yet pruned) is taken over as if it were new.
                inserted = await conn.execute(
                    self._sql(sql.CLAIM),
                    {"key": key, "fp": request_fingerprint, "ttl": self._ttl},
                )
                if (claimed := inserted.first()) is not None:
                    return Claim(key, recovered=False, token=claimed.locked_at)
                row = (
                    await conn.execute(
                        self._sql(sql.LOOK_UP),
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
                        self._sql(sql.TAKE_OVER_STALE),
                        {"key": key, "lease": self._lease},
                    )
                    if (recovered := taken.first()) is not None:
                        log.warning("idempotency_key_recovered", key=key)
                        return Claim(key, recovered=True, token=recovered.locked_at)
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

    async def renew(self, claim: Claim) -> bool:
        """Extend the claim's lease (and move its token). False if the claim is no longer this request's."""
        async with autocommit(self._engine) as conn:
            renewed = (
                await conn.execute(
                    self._sql(sql.RENEW),
                    {"key": claim.key, "token": claim.token},
                )
            ).first()
        if renewed is None:
            return False
        claim.token = renewed.locked_at
        return True

    def _fence(self, token: datetime | None) -> str:
        # Without a token (a caller from before fencing) the key alone decides, as it used to.
        return sql.FENCE if token is not None else ""

    def _sql(self, statement: str, **parts: str) -> TextClause:
        return text(statement.format(table=self._table, **parts))

    async def complete(self, key: str, response: Response, *, token: datetime | None = None) -> bool:
        """Store ``response`` for the claim holding ``token``. False (nothing stored) if that claim lost the
        key: another request took it over, and its answer is the one to keep."""
        async with autocommit(self._engine) as conn:
            result = await conn.execute(
                self._sql(sql.COMPLETE, fence=self._fence(token)),
                {
                    "key": key,
                    "status": response.status_code,
                    "ctype": response.media_type or "application/json",
                    "body": bytes(response.body),
                    "token": token,
                },
            )
            return bool(result.rowcount)

    async def release(self, key: str, *, token: datetime | None = None) -> bool:
        """Free the claim holding ``token`` so the key can be retried; False if it was not held any more."""
        async with autocommit(self._engine) as conn:
            result = await conn.execute(
                self._sql(sql.RELEASE, fence=self._fence(token)),
                {"key": key, "token": token},
            )
            return bool(result.rowcount)

    async def prune(self) -> int:
        async with autocommit(self._engine) as conn:
            result = await conn.execute(
                self._sql(sql.PRUNE),
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

    Final refusals (``AppError.final``) are stored like successes; any other error releases the key. While
    the handler runs its lease is renewed, and complete and release are fenced by the claim's token.
    """
    if key is None:
        return await handler(None)
    outcome = await store.claim(key, fingerprint(request.method, request.url.path, payload))
    if isinstance(outcome, StoredResponse):
        IDEMPOTENT_REPLAYS.labels(store.table).inc()
        log.info("idempotent_replay", key=key, status=outcome.status)
        return outcome.replay()
    claim = outcome
    try:
        async with _renewing(store, claim):
            response = await handler(claim)
    except AppError as exc:
        if not exc.final:
            await _release(store, claim)
            raise
        response = app_error_response(exc)
    except BaseException:
        await _release(store, claim)
        raise
    if not await store.complete(claim.key, response, token=claim.token):
        log.error("idempotency_lease_lost", key=key, status=response.status_code)
    return response


async def _release(store: IdempotencyStore, claim: Claim) -> None:
    if not await store.release(claim.key, token=claim.token):
        log.warning("idempotency_release_fenced", key=claim.key)


@contextlib.asynccontextmanager
async def _renewing(store: IdempotencyStore, claim: Claim) -> AsyncIterator[None]:
    """Renew ``claim``'s lease every third of it until the block ends. The renewer is stopped, not cancelled:
    a renewal cut off mid-statement could move the token in the database and not in ``claim``, and the
    request would then be fenced out of its own key."""
    stop = asyncio.Event()

    async def renew_until_stopped() -> None:
        every_s = store.lease.total_seconds() / 3
        while True:
            try:
                await asyncio.wait_for(stop.wait(), every_s)
                return
            except TimeoutError:
                pass
            try:
                if not await store.renew(claim):
                    log.error("idempotency_lease_lost", key=claim.key)
                    return
            except Exception:  # a failed renewal is retried next period; the lease has two more left
                log.warning("idempotency_renew_failed", key=claim.key, exc_info=True)

    renewer = asyncio.create_task(renew_until_stopped())
    try:
        yield
    finally:
        stop.set()
        await renewer


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


@dataclass(frozen=True)
class Idempotency:
    """What an idempotent route takes as a parameter: its validated key (None when the header is optional
    and absent) and the app's store. ``run`` claims, replays, completes and releases."""

    store: IdempotencyStore
    request: Request
    key: str | None

    @property
    def required_key(self) -> str:
        """The key of a route that requires one (the dependency refused the request without it)."""
        if self.key is None:
            raise IdempotencyKeyMissing("Send an Idempotency-Key header with this request.")
        return self.key

    async def run(self, payload: Any, handler: Callable[[], Awaitable[Response]]) -> Response:
        """``handler`` at most once per key and ``payload`` (its fingerprint); see run_idempotently."""

        async def handle(_claim: Claim | None) -> Response:
            return await handler()

        return await run_idempotently(self.store, self.request, self.key, payload, handle)


def idempotency(*, required: bool) -> Callable[..., Awaitable[Idempotency]]:
    """The dependency for a route under an Idempotency-Key: validates the header (400 before anything runs)
    and hands the app's store (``app.state.idempotency``, set by the service's lifespan)."""
    description = (
        f"{'Required' if required else 'Optional'}, 1 to {MAX_KEY_LENGTH} printable ASCII characters: "
        "the same key and body do it once"
    )

    async def dependency(
        request: Request,
        idempotency_key: Annotated[
            str | None, Header(alias="Idempotency-Key", description=description)
        ] = None,
    ) -> Idempotency:
        key = validate_key(idempotency_key, required=required)
        return Idempotency(request.app.state.idempotency, request, key)

    return dependency


IdempotentRequest = Annotated[Idempotency, Depends(idempotency(required=True))]
OptionallyIdempotentRequest = Annotated[Idempotency, Depends(idempotency(required=False))]
