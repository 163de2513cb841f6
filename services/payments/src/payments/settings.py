from pydantic import Field
from pydantic_settings import SettingsConfigDict

from servicekit.settings import IdempotencySettings


class PaymentsSettings(IdempotencySettings):
    model_config = SettingsConfigDict(env_prefix="PAYMENTS_", extra="ignore")

    service_name: str = "payments"
    # How long an authorization holds the money, like a card network's hold: capture before then or never.
    authorization_ttl_h: float = Field(default=168, gt=0)
    # How long each call to the simulated card processor takes (see payments.processor), for slow-processor
    # tests and the demo.
    processor_latency_s: float = Field(default=0.0, ge=0, le=60)
    # Captures, voids and refunds left pending by a request that died are finished by the service itself:
    # every resume_interval_s, those pending for longer than resume_after_s (well past any live request).
    resume_interval_s: float = Field(default=30, gt=0)
    resume_after_s: float = Field(default=120, ge=0)
