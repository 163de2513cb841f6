"""API keys for integrations (``Authorization: Bearer lsk_…``): created by an admin with scopes, shown once,
stored as the SHA-256 of their secret, listed and revoked (ADR 0010).

A key is ``lsk_<prefix>_<secret>``: the 12-hex-digit prefix is the key's public handle (it finds the row and
is what the admin sees in the list), the secret is 256 random bits. A fast hash suffices for a secret that
cannot be guessed (argon2 is for passwords people choose); the comparison is constant-time.
"""

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.auth import Principal
from gateway.errors import Unauthenticated
from gateway.scopes import Scope, scopes_named

log = structlog.get_logger()

PREFIX = "lsk_"
_KEY = re.compile(r"lsk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
_COLUMNS = "id, prefix, name, scopes, created_at, last_used_at, revoked_at"


@dataclass(frozen=True)
class ApiKey:
    id: int
    prefix: str
    name: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def looks_like_key(token: str) -> bool:
    return token.startswith(PREFIX)


async def create_key(
    engine: AsyncEngine, name: str, scopes: list[Scope], created_by: int | None, *, by: str
) -> tuple[ApiKey, str]:
    """The stored key and the key itself (the only time it exists outside the caller's hands)."""
    prefix, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    async with engine.begin() as conn:
        row = (
            await conn.execute(
                text(
                    "INSERT INTO auth.api_keys (prefix, secret_hash, name, scopes, created_by) "
                    f"VALUES (:prefix, :hash, :name, :scopes, :by) RETURNING {_COLUMNS}"
                ),
                {
                    "prefix": prefix,
                    "hash": _hash(secret),
                    "name": name,
                    "scopes": sorted({scope.value for scope in scopes}),
                    "by": created_by,
                },
            )
        ).one()
    key = ApiKey(**row._mapping)
    log.info("api_key_created", api_key_id=key.id, scopes=key.scopes, by=by)
    return key, f"{PREFIX}{prefix}_{secret}"


async def list_keys(engine: AsyncEngine) -> list[ApiKey]:
    async with engine.connect() as conn:
        rows = await conn.execute(text(f"SELECT {_COLUMNS} FROM auth.api_keys ORDER BY id DESC"))
        return [ApiKey(**row._mapping) for row in rows]


async def revoke_key(engine: AsyncEngine, key_id: int, *, by: str) -> ApiKey | None:
    async with engine.begin() as conn:
        row = (
            await conn.execute(
                text(
                    "UPDATE auth.api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = :id "
                    f"RETURNING {_COLUMNS}"
                ),
                {"id": key_id},
            )
        ).first()
    if row is None:
        return None
    log.info("api_key_revoked", api_key_id=key_id, by=by)
    return ApiKey(**row._mapping)


_INVALID = "The API key is not valid (unknown, revoked or mistyped)."


async def verify_key(engine: AsyncEngine, token: str) -> Principal:
    """The key's principal, or UNAUTHENTICATED. Marks the key used (at most once a minute: the list shows
    when a key was last used without a write per request)."""
    match = _KEY.fullmatch(token)
    if match is None:
        raise Unauthenticated(_INVALID)
    prefix, secret = match.groups()
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT id, secret_hash, scopes, revoked_at, "
                    "last_used_at IS NULL OR last_used_at < now() - interval '1 minute' AS stale "
                    "FROM auth.api_keys WHERE prefix = :prefix"
                ),
                {"prefix": prefix},
            )
        ).first()
    if (
        row is None
        or row.revoked_at is not None
        or not hmac.compare_digest(bytes(row.secret_hash), _hash(secret))
    ):
        raise Unauthenticated(_INVALID)
    if row.stale:
        async with engine.begin() as conn:
            await conn.execute(
                text("UPDATE auth.api_keys SET last_used_at = now() WHERE id = :id"), {"id": row.id}
            )
    return Principal(
        username=f"api-key:{row.id}",
        role="api_key",
        api_key_id=row.id,
        scopes=frozenset(scopes_named(row.scopes)),
    )
