"""The settings every app shares; each app subclasses with its own env prefix."""

from datetime import timedelta
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class KitSettings(BaseSettings):
    """Base for every app's settings. Subclasses set `env_prefix` (e.g. ``ORDERS_``)."""

    model_config = SettingsConfigDict(extra="ignore")

    service_name: str = "service"
    log_level: str = "INFO"
    log_json: bool = True
    # Service credentials (servicekit.callers, docs/adr/0007): the token this app sends to the services it
    # calls, and the tokens of the apps allowed to call this one, by name. JSON in the env:
    # ORDERS_CALLER_TOKENS='{"gateway": "..."}'.
    service_token: SecretStr | None = None
    caller_tokens: dict[str, SecretStr] = Field(default_factory=dict)


class DatabaseSettings(KitSettings):
    """Settings for an app that owns a PostgreSQL schema."""

    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:54329/lockstock"
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_max_overflow: int = Field(default=10, ge=0, le=200)
    # A request never waits forever on a row lock or a runaway query: it gets a 503 it can retry.
    db_lock_timeout_ms: int = Field(default=5_000, ge=0)
    db_statement_timeout_ms: int = Field(default=15_000, ge=0)
    # "transaction" when a pooler in transaction mode (pgbouncer) sits between the app and PostgreSQL: a
    # server connection then serves one transaction and goes back to the pool, so nothing may outlive a
    # transaction on it (prepared statements, session settings). docs/adr/0005-pgbouncer-…pooling.md
    db_pooler: Literal["none", "transaction"] = "none"


class IdempotencySettings(DatabaseSettings):
    """Settings for a service that keeps idempotency keys (servicekit.idempotency)."""

    idempotency_ttl_hours: float = Field(default=24, gt=0)
    idempotency_prune_interval_s: float = Field(default=600, gt=0)
    # How long a claim holds its key without a renewal; a running request renews it every third of this.
    idempotency_lease_s: float = Field(default=60, gt=0, le=3600)

    @model_validator(mode="after")
    def _ttl_outlives_the_lease(self) -> "IdempotencySettings":
        if self.idempotency_ttl_hours * 3600 <= self.idempotency_lease_s:
            raise ValueError(
                f"idempotency_ttl_hours ({self.idempotency_ttl_hours} h) must be longer than "
                f"idempotency_lease_s ({self.idempotency_lease_s} s): "
                "a key must not expire under a running request"
            )
        return self

    @property
    def idempotency_ttl(self) -> timedelta:
        return timedelta(hours=self.idempotency_ttl_hours)

    @property
    def idempotency_lease(self) -> timedelta:
        return timedelta(seconds=self.idempotency_lease_s)
