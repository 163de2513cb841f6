from pydantic import Field
from pydantic_settings import SettingsConfigDict

from servicekit.settings import DatabaseSettings


class OrdersSettings(DatabaseSettings):
    model_config = SettingsConfigDict(env_prefix="ORDERS_", extra="ignore")

    service_name: str = "orders"
    idempotency_ttl_hours: float = Field(default=24, gt=0)
    idempotency_prune_interval_s: float = Field(default=600, gt=0)
    # Capture calls payments (see orders.payments): where, and how patiently.
    payments_url: str = "http://127.0.0.1:8003"
