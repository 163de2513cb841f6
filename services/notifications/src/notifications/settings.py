from pydantic import Field
from pydantic_settings import SettingsConfigDict

from servicekit.settings import DatabaseSettings


class NotificationsSettings(DatabaseSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFICATIONS_", extra="ignore")

    service_name: str = "notifications"
    db_pool_size: int = Field(default=5, ge=1, le=200)
    # The API alone (false) or the API and the outbox worker (true). Several workers may run at once.
    worker_enabled: bool = True
    # Wakes come from LISTEN outbox; the poll is the fallback (a lost notification, a due retry).
    poll_interval_s: float = Field(default=1.0, gt=0, le=60)
    batch_size: int = Field(default=50, ge=1, le=1000)
    # A claimed job or delivery is this worker's for so long; past it another worker may take it over.
    lease_s: float = Field(default=60, gt=0)
    # smtp://user:password@host:port (plain, or STARTTLS with ?starttls=true), smtps://… for implicit TLS.
    smtp_url: str = "smtp://127.0.0.1:8025"
    smtp_timeout_s: float = Field(default=10, gt=0, le=120)
    mail_from: str = "lockstock <shop@lockstock.local>"
    # The right-hand side of each Message-ID (<event-id@domain>).
    message_id_domain: str = "lockstock.local"
    shop_url: str = "http://127.0.0.1:8080"
    # Where a low-stock alert is mailed when it opens (once per alert); none: alerts are not mailed.
    admin_email: str | None = None
    # Refuse webhook URLs that resolve to private, loopback or link-local addresses unless this is true
    # (task up sets it, so a receiver on the developer's machine works).
    webhooks_allow_private: bool = False
    webhook_timeout_s: float = Field(default=10, gt=0, le=60)
    webhook_concurrency: int = Field(default=10, ge=1, le=100)
    # Outbox pruning: an event every consumer has finished with (its jobs and webhook deliveries done or
    # failed, and published if the NATS relay is on) is deleted, with its jobs and deliveries, once it is
    # older than the retention; in batches of prune_batch_size, one every prune_interval_s while any is due.
    outbox_retention_days: float = Field(default=7, gt=0, le=3_650)
    prune_interval_s: float = Field(default=60, gt=0, le=86_400)
    prune_batch_size: int = Field(default=500, ge=1, le=10_000)
    # The optional NATS JetStream relay: off unless a URL is set (nats://127.0.0.1:4222).
    nats_url: str | None = None
    nats_stream: str = "LOCKSTOCK_EVENTS"
    nats_subject_prefix: str = "lockstock"
