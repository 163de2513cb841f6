"""Admin accounts (schema ``auth``), argon2 password hashes, JWTs, and the sign-in throttle."""

import asyncio
import math
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import jwt
import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from limits import RateLimitItem, parse
from limits.aio.storage import Storage as AsyncStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.errors import RateLimited, Unauthenticated
from gateway.metrics import PASSWORD_VERIFICATIONS
from gateway.settings import GatewaySettings

log = structlog.get_logger()

Role = Literal["admin", "staff"]
ROLES: tuple[Role, ...] = ("admin", "staff")
MAX_USERNAME = 100
MAX_PASSWORD = 1_024  # argon2 would hash a megabyte, slowly: longer passwords are simply wrong
MIN_PASSWORD = 12
ISSUER = "lockstock-gateway"

_hasher = PasswordHasher()
# Verified when the username does not exist, so a miss costs as much as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class AccountExists(Exception):
    pass


def hash_password(password: str) -> str:
    return _hasher.hash(password)


async def create_account(engine: AsyncEngine, username: str, password: str, role: Role = "admin") -> None:
    if not 1 <= len(username) <= MAX_USERNAME:
        raise ValueError(f"username must be 1 to {MAX_USERNAME} characters")
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
    username: str
    role: str


async def authenticate(engine: AsyncEngine, username: str, password: str) -> Principal | None:
    """The account if the password is right; None otherwise (whether or not the username exists)."""
    if not (1 <= len(username) <= MAX_USERNAME and 1 <= len(password) <= MAX_PASSWORD):
        return None
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT password_hash, role FROM auth.accounts WHERE username = :u"), {"u": username}
            )
        ).first()
    stored = row.password_hash if row else _DUMMY_HASH
    PASSWORD_VERIFICATIONS.inc()
    try:
        # argon2 is deliberately slow: off the event loop.
        await asyncio.to_thread(_hasher.verify, stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None:
        return None
    if _hasher.check_needs_rehash(stored):
        new_hash = await asyncio.to_thread(hash_password, password)
        async with engine.begin() as conn:
            await conn.execute(
                text("UPDATE auth.accounts SET password_hash = :h WHERE username = :u"),
                {"h": new_hash, "u": username},
            )
    return Principal(username=username, role=row.role)


class Tokens:
    """HS256 JWTs carrying the role; short-lived (``jwt_ttl_s``)."""

    def __init__(self, secret: str, ttl_s: int) -> None:
        self._secret = secret
        self._ttl = timedelta(seconds=ttl_s)

    def issue(self, principal: Principal) -> tuple[str, datetime]:
        now = datetime.now(UTC)
        expires_at = now + self._ttl
        claims = {
            "sub": principal.username,
            "role": principal.role,
            "iat": now,
            "exp": expires_at,
            "iss": ISSUER,
        }
        return jwt.encode(claims, self._secret, algorithm="HS256"), expires_at.replace(microsecond=0)

    def verify(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                issuer=ISSUER,
                options={"require": ["exp", "sub", "role", "iss"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("The token has expired; sign in again.") from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated("The token is not valid; sign in again.") from exc
        return Principal(username=str(claims["sub"]), role=str(claims["role"]))


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Use 'Authorization: Bearer <token>'.")
    return token.strip()


def limit_storage(uri: str) -> AsyncStorage:
    """The counters' store. ``async+memory://`` is per process; replicas share one with ``redis://host:6379/0``
    (or ``async+redis://``), served by redis-py's asyncio client. A scheme without ``async+`` gets it: the
    limiter is async."""
    if not uri.startswith("async+"):
        uri = f"async+{uri}"
    if uri.startswith(("async+redis://", "async+rediss://")):
        storage = storage_from_string(uri, implementation="redispy")
    else:
        storage = storage_from_string(uri)
    assert isinstance(storage, AsyncStorage)
    return storage


class Limits:
    """Per-client rate limits and the failed sign-in throttle (the `limits` library, moving window)."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.storage = limit_storage(settings.rate_limit_storage_uri)
        self.limiter = MovingWindowRateLimiter(self.storage)
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
