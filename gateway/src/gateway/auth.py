"""Admin accounts (schema ``auth``), argon2 password hashes, JWTs, and the sign-in throttle."""

import asyncio
import math
import secrets
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import jwt
import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from limits import RateLimitItem, WindowStats, parse
from limits.aio.storage import Storage as AsyncStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from limits.storage import storage_from_string
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.errors import RateLimited, ServiceUnavailable, Unauthenticated
from gateway.metrics import PASSWORD_VERIFICATIONS
from gateway.scopes import Scope
from gateway.settings import GatewaySettings
from servicekit.rules import MAX_PASSWORD, MIN_PASSWORD

log = structlog.get_logger()

Role = Literal["admin", "staff"]
ROLES: tuple[Role, ...] = ("admin", "staff")
MAX_USERNAME = 100
ISSUER = "lockstock-gateway"

_hasher = PasswordHasher()
# Verified when the username does not exist, so a miss costs as much as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class AccountExists(Exception):
    pass


def plausible_username(username: str) -> bool:
    """Whether an account could have this name (1 to 100 printable characters): anything else is no account,
    answered without asking the database (which refuses a NUL byte outright)."""
    return 1 <= len(username) <= MAX_USERNAME and username.isprintable()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


async def create_account(engine: AsyncEngine, username: str, password: str, role: Role = "admin") -> None:
    if not plausible_username(username):
        raise ValueError(f"username must be 1 to {MAX_USERNAME} printable characters")
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ValueError(f"password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    password_hash = await asyncio.to_thread(hash_password, password)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text("INSERT INTO auth.accounts (username, password_hash, role) VALUES (:u, :h, :r)"),
                {"u": username, "h": password_hash, "r": role},
            )
    except IntegrityError as exc:
        raise AccountExists(username) from exc


async def account_exists(engine: AsyncEngine, username: str) -> bool:
    async with engine.connect() as conn:
        found = await conn.scalar(text("SELECT 1 FROM auth.accounts WHERE username = :u"), {"u": username})
    return found is not None


@dataclass(frozen=True)
class Principal:
    """Who is calling: a signed-in person (an account and its session) or an API key.

    A person with the admin role may do everything an admin can; a key only what its scopes name, and never
    manage accounts or keys (those need a person: ``is_person``)."""

    username: str  # the account's; for a key, "api-key:<id>"
    role: str
    account_id: int | None = None
    session_id: uuid.UUID | None = None
    api_key_id: int | None = None
    scopes: frozenset[Scope] = frozenset()

    @property
    def is_person(self) -> bool:
        return self.api_key_id is None

    def allows(self, scope: Scope) -> bool:
        if self.is_person:
            return self.role == "admin"
        return scope in self.scopes


_ACCOUNT = text("SELECT id, password_hash, role, disabled_at FROM auth.accounts WHERE username = :u")
_SET_HASH = text("UPDATE auth.accounts SET password_hash = :h WHERE id = :id")


async def authenticate(engine: AsyncEngine, username: str, password: str) -> Principal | None:
    """The account if the password is right and the account enabled; None otherwise (whether or not the
    username exists: a miss costs one argon2 verification like a wrong password)."""
    if not (plausible_username(username) and 1 <= len(password) <= MAX_PASSWORD):
        return None
    async with engine.connect() as conn:
        row = (await conn.execute(_ACCOUNT, {"u": username})).first()
    if not await _password_matches(row.password_hash if row else _DUMMY_HASH, password) or row is None:
        return None
    if row.disabled_at is not None:
        log.info("login_refused_disabled", username=username)
        return None
    await _rehash_if_needed(engine, row.id, row.password_hash, password)
    return Principal(username=username, role=row.role, account_id=row.id)


async def _password_matches(stored: str, password: str) -> bool:
    PASSWORD_VERIFICATIONS.inc()
    try:
        # argon2 is deliberately slow: off the event loop.
        await asyncio.to_thread(_hasher.verify, stored, password)
    except (VerificationError, InvalidHashError):
        return False
    return True


async def _rehash_if_needed(engine: AsyncEngine, account_id: int, stored: str, password: str) -> None:
    if _hasher.check_needs_rehash(stored):
        new_hash = await asyncio.to_thread(hash_password, password)
        async with engine.begin() as conn:
            await conn.execute(_SET_HASH, {"h": new_hash, "id": account_id})


class WrongPassword(Exception):
    pass


async def change_password(engine: AsyncEngine, principal: Principal, current: str, new: str) -> None:
    """Set a new password once the current one is proven, and end every session of the account (the caller
    signs in again, or takes the token the mutation issues). Raises WrongPassword, or ValueError for a new
    password out of bounds."""
    if not MIN_PASSWORD <= len(new) <= MAX_PASSWORD:
        raise ValueError(f"The new password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters.")
    async with engine.connect() as conn:
        stored = await conn.scalar(
            text("SELECT password_hash FROM auth.accounts WHERE id = :id"), {"id": principal.account_id}
        )
    if stored is None or len(current) > MAX_PASSWORD or not await _password_matches(stored, current):
        raise WrongPassword
    new_hash = await asyncio.to_thread(hash_password, new)
    async with engine.begin() as conn:
        await conn.execute(_SET_HASH, {"h": new_hash, "id": principal.account_id})
        await conn.execute(_REVOKE_ALL, {"account": principal.account_id})
    log.info("password_changed", username=principal.username)


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    role: str
    created_at: datetime
    disabled_at: datetime | None


async def list_accounts(engine: AsyncEngine) -> list[Account]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT id, username, role, created_at, disabled_at FROM auth.accounts ORDER BY username")
        )
        return [Account(**row._mapping) for row in rows]


async def set_account_disabled(
    engine: AsyncEngine, username: str, disabled: bool, *, by: str
) -> Account | None:
    """Disable (ending every session at once) or enable an account; None when there is no such account.
    ``by``: who did it, for the log (an admin's username, or the command line)."""
    if not plausible_username(username):
        return None
    async with engine.begin() as conn:
        row = (
            await conn.execute(
                text(
                    "UPDATE auth.accounts "
                    "SET disabled_at = CASE WHEN :off THEN coalesce(disabled_at, now()) END "
                    "WHERE username = :u RETURNING id, username, role, created_at, disabled_at"
                ),
                {"off": disabled, "u": username},
            )
        ).first()
        if row is None:
            return None
        if disabled:
            await conn.execute(_REVOKE_ALL, {"account": row.id})
    log.info("account_disabled" if disabled else "account_enabled", username=username, by=by)
    return Account(**row._mapping)


_REVOKE_ALL = text(
    "UPDATE auth.sessions SET revoked_at = now() WHERE account_id = :account AND revoked_at IS NULL"
)
_OPEN_SESSION = text(
    """
    SELECT a.id, a.username, a.role
      FROM auth.sessions s JOIN auth.accounts a ON a.id = s.account_id
     WHERE s.id = :sid AND s.revoked_at IS NULL AND s.expires_at > now() AND a.disabled_at IS NULL
    """
)
# Sessions are kept a day past their expiry (a late request still hears "expired", not "unknown"), then go.
_PRUNE_SESSIONS = text("DELETE FROM auth.sessions WHERE expires_at < now() - interval '1 day'")


class Tokens:
    """HS256 JWTs naming a server-side session (claim ``sid``), so a token can end before it expires.

    The signature and expiry are checked first (a forged token costs no query); then the session must be open
    and its account enabled: one indexed look-up per signed-in request. The role is read from the account,
    not the token, so a role change also holds at once."""

    def __init__(self, secret: str, ttl_s: int) -> None:
        self._secret = secret
        self._ttl = timedelta(seconds=ttl_s)

    async def issue(self, engine: AsyncEngine, principal: Principal) -> tuple[str, datetime]:
        now = datetime.now(UTC)
        expires_at = (now + self._ttl).replace(microsecond=0)
        session_id = uuid.uuid4()
        async with engine.begin() as conn:
            await conn.execute(_PRUNE_SESSIONS)
            await conn.execute(
                text("INSERT INTO auth.sessions (id, account_id, expires_at) VALUES (:id, :account, :exp)"),
                {"id": session_id, "account": principal.account_id, "exp": expires_at},
            )
        claims = {
            "sub": principal.username,
            "sid": str(session_id),
            "iat": now,
            "exp": expires_at,
            "iss": ISSUER,
        }
        return jwt.encode(claims, self._secret, algorithm="HS256"), expires_at

    def _claims(self, token: str) -> dict[str, object]:
        try:
            claims: dict[str, object] = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                issuer=ISSUER,
                options={"require": ["exp", "sub", "sid", "iss"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("The token has expired; sign in again.") from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated("The token is not valid; sign in again.") from exc
        return claims

    async def verify(self, engine: AsyncEngine, token: str) -> Principal:
        claims = self._claims(token)
        try:
            session_id = uuid.UUID(str(claims["sid"]))
        except ValueError as exc:
            raise Unauthenticated("The token is not valid; sign in again.") from exc
        async with engine.connect() as conn:
            row = (await conn.execute(_OPEN_SESSION, {"sid": session_id})).first()
        if row is None:
            raise Unauthenticated(
                "This session has ended (signed out, password changed or account disabled); sign in again."
            )
        return Principal(username=row.username, role=row.role, account_id=row.id, session_id=session_id)

    async def revoke(self, engine: AsyncEngine, principal: Principal, *, everywhere: bool = False) -> None:
        """End this session, or every session of its account."""
        async with engine.begin() as conn:
            if everywhere:
                await conn.execute(_REVOKE_ALL, {"account": principal.account_id})
            else:
                await conn.execute(
                    text(
                        "UPDATE auth.sessions SET revoked_at = now() WHERE id = :sid AND revoked_at IS NULL"
                    ),
                    {"sid": principal.session_id},
                )


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Use 'Authorization: Bearer <token>'.")
    return token.strip()


STORE_TIMEOUT_S = 1.0


def limit_storage(uri: str) -> AsyncStorage:
    """The counters' store. ``async+memory://`` is per process; replicas share one with ``redis://host:6379/0``
    (or ``async+redis://``), served by redis-py's asyncio client. A scheme without ``async+`` gets it: the
    limiter is async."""
    if not uri.startswith("async+"):
        uri = f"async+{uri}"
    # wrap_exceptions: every failure of the store is one StorageError (Limits answers it with a 503).
    if uri.startswith(("async+redis://", "async+rediss://")):
        # A store that hangs must not hang every operation: a second to connect or answer, then a 503.
        storage = storage_from_string(
            uri,
            implementation="redispy",
            wrap_exceptions=True,
            socket_connect_timeout=STORE_TIMEOUT_S,
            socket_timeout=STORE_TIMEOUT_S,
        )
    else:
        storage = storage_from_string(uri, wrap_exceptions=True)
    assert isinstance(storage, AsyncStorage)
    return storage


class _Limiter:
    """The moving-window limiter with the store's failures answered as SERVICE_UNAVAILABLE: a limit that
    cannot be counted is neither skipped (that would be no limit while Redis is down) nor a masked INTERNAL,
    but a retryable refusal the shop shows as its 503 page."""

    def __init__(self, storage: AsyncStorage) -> None:
        self._limiter = MovingWindowRateLimiter(storage)

    async def hit(self, item: RateLimitItem, *keys: str) -> bool:
        with _store_failures():
            return await self._limiter.hit(item, *keys)

    async def get_window_stats(self, item: RateLimitItem, *keys: str) -> WindowStats:
        with _store_failures():
            return await self._limiter.get_window_stats(item, *keys)

    async def clear(self, item: RateLimitItem, *keys: str) -> None:
        with _store_failures():
            await self._limiter.clear(item, *keys)


@contextmanager
def _store_failures() -> Iterator[None]:
    try:
        yield
    except StorageError as exc:
        log.warning("rate_limit_store_unavailable", error=type(exc.storage_error).__name__)
        raise ServiceUnavailable("The rate-limit store is unavailable.", retry_after=2) from exc


class Limits:
    """Per-client rate limits and the failed sign-in throttle (the `limits` library, moving window)."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.storage = limit_storage(settings.rate_limit_storage_uri)
        self.limiter = _Limiter(self.storage)
        self.place_order = parse(settings.rate_limit_place_order)
        self.authorize_payment = parse(settings.rate_limit_authorize_payment)
        self.login = parse(settings.rate_limit_login)
        self.operation = parse(settings.rate_limit_operation)
        self.failures_per_username = parse(settings.login_failures_per_username)
        self.failures_per_client = parse(settings.login_failures_per_client)

    async def _retry_after(self, item: RateLimitItem, *keys: str) -> int:
        stats = await self.limiter.get_window_stats(item, *keys)
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def hit(self, item: RateLimitItem, *keys: str) -> None:
        """Count one request; raise RateLimited when over the limit."""
        if not await self.limiter.hit(item, *keys):
            raise RateLimited(await self._retry_after(item, *keys))

    async def claim_sign_in_attempt(self, username: str, client: str) -> None:
        """Count this sign-in attempt, *before* its password is checked, against this username from this
        address and against this address; refuse it (RateLimited) once either is over its limit.

        Counting first is what holds 50 concurrent guesses to the limit: a check that runs before anything is
        counted lets every one of them through to argon2. The username is counted per address, so a flood
        of guesses for ``admin`` from one place cannot lock the real admin out from anywhere else (ADR 0007).
        """
        for item, key in (
            (self.failures_per_username, ("login-attempt", f"user:{username}", client)),
            (self.failures_per_client, ("login-attempt", client)),
        ):
            if not await self.limiter.hit(item, *key):
                log.warning("login_throttled", username=username[:MAX_USERNAME], client=client)
                raise RateLimited(await self._retry_after(item, *key))

    async def forget_sign_in_attempts(self, username: str, client: str) -> None:
        """After a right password: this username's count at this address starts again (the address's own
        count does not: it bounds how many guesses one place makes across usernames)."""
        await self.limiter.clear(self.failures_per_username, "login-attempt", f"user:{username}", client)
