from typing import Literal

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
    # POST /orders: "batched" gathers the orders that arrive while one batch is in the database into the next
    # (one statement and one commit each, see repository.PLACE_ORDERS); "single" is one statement per order.
    placement: Literal["batched", "single"] = "batched"
    placement_max_batch: int = Field(default=64, ge=1, le=1_000)
    # A placed order holds its stock this long unless it is authorized (then it no longer expires).
    reservation_ttl_s: float = Field(default=900, gt=0, le=30 * 86_400)
    expiry_sweep_interval_s: float = Field(default=5, gt=0, le=3_600)
    reconcile_interval_s: float = Field(default=10, gt=0, le=3_600)
    # An order whose call to payments began is reconciled once this long has passed after the call's whole
    # retry budget (and each call's own timeout), unless the reconciler finds it settled first.
    reconcile_margin_s: float = Field(default=5, ge=0, le=3_600)

    @property
    def payments_budget_s(self) -> float:
        """The longest one call to payments (all its retries) can take, plus the margin."""
        return self.payments_retry_timeout_s + self.payments_timeout_s + self.reconcile_margin_s
