from pydantic import Field
from pydantic_settings import SettingsConfigDict

from servicekit.settings import IdempotencySettings


class PaymentsSettings(IdempotencySettings):
    model_config = SettingsConfigDict(env_prefix="PAYMENTS_", extra="ignore")

    service_name: str = "payments"
    # The simulated card processor (see payments.processor): share of charges that succeed, and how long
    # each charge takes. Test amounts decline deterministically whatever the success rate.
    processor_success_rate: float = Field(default=1.0, ge=0, le=1)
    processor_latency_s: float = Field(default=0.0, ge=0, le=60)
