from pydantic import Field
from pydantic_settings import SettingsConfigDict

from servicekit.settings import IdempotencySettings


class OrdersSettings(IdempotencySettings):
    model_config = SettingsConfigDict(env_prefix="ORDERS_", extra="ignore")

    service_name: str = "orders"
    # Capture calls payments (see orders.payments): where, and how patiently.
    payments_url: str = "http://127.0.0.1:8003"
    payments_timeout_s: float = Field(default=5.0, gt=0, le=120, description="Each call to payments")
    payments_max_connections: int = Field(default=50, ge=1, le=1000)
    payments_retry_attempts: int = Field(default=5, ge=1, le=50)
    payments_retry_timeout_s: float = Field(default=15.0, gt=0, le=600, description="All attempts together")
    payments_retry_wait_initial_s: float = Field(default=0.1, ge=0, le=60)
    payments_retry_wait_max_s: float = Field(default=2.0, ge=0, le=60)
    payments_retry_wait_jitter_s: float = Field(default=0.2, ge=0, le=60)
