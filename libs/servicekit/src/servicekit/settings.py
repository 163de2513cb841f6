"""The settings every app shares; each app subclasses with its own env prefix."""

from pydantic import Field, SecretStr
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
