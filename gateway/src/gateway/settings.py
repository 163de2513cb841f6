"""The gateway's settings (env prefix ``GATEWAY_``). Every limit is a setting; tests lower them."""

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from servicekit.settings import DatabaseSettings


class GatewaySettings(DatabaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    service_name: str = "gateway"

    inventory_url: str = "http://127.0.0.1:8001"
    orders_url: str = "http://127.0.0.1:8002"
    payments_url: str = "http://127.0.0.1:8003"
    # The notifications worker's API: the admin's outgoing mail, webhooks, low-stock alerts and sales.
    notifications_url: str = "http://127.0.0.1:8004"
    # Capture waits for orders, which retries payments for up to 15 s: upstream calls get more than that.
    upstream_timeout_s: float = Field(default=30.0, gt=0, le=300)
    upstream_connect_timeout_s: float = Field(default=3.0, gt=0, le=60)
    upstream_max_connections: int = Field(default=100, ge=1, le=10_000)

    # No default secret: without one, a random secret is made per process (tokens then die with it).
    jwt_secret: SecretStr | None = None
    jwt_ttl_s: int = Field(default=3_600, ge=10, le=7 * 24 * 3_600)
    # Signs the orders' access tokens (HMAC-SHA256 of "order:{id}"). Unset: derived from the JWT secret, so
    # one secret to manage; set it to rotate order links apart from sign-ins. Changing it voids every link.
    order_token_secret: SecretStr | None = None

    graphiql: bool = True
    introspection: bool = True
    max_query_depth: int = Field(default=10, ge=1, le=100)
    max_query_tokens: int = Field(default=2_000, ge=10)
    max_aliases: int = Field(default=30, ge=0)
    # The estimated cost of an operation (gateway.cost): each field 1, a list times its page size (`first`),
    # default_list_size for a list nothing bounds. The admin's 100-order page costs 905, the shop's placeOrder
    # 174, a shop page of 20 products 85 (gateway/tests/test_cost.py holds every UI query under the default).
    max_query_cost: int = Field(default=2_000, ge=1)
    default_list_size: int = Field(default=10, ge=1, le=1_000)
    # Validated documents kept (LRU); see schema.build_schema.
    document_cache_size: int = Field(default=256, ge=1, le=100_000)
    max_body_bytes: int = Field(default=64 * 1024, ge=1_024)

    # `limits` rate-limit strings, moving window. Customers may share one NAT address: keep these generous.
    rate_limit_place_order: str = "120/minute"
    # Each attempt asks the card processor: a low limit is what stops card testing through the shop.
    rate_limit_authorize_payment: str = "30/minute"
    rate_limit_login: str = "10/minute"
    # Every operation, queries included, per client (gateway.context.Context.client_key: the signed-in user,
    # else the address). A shop page is a few operations; shoppers behind one NAT share an address.
    rate_limit_operation: str = "600/minute"
    # Sign-in attempts, counted before the password is checked (a right one clears its username's count):
    # per username *and* address, so a flood for one username from one place locks out nobody elsewhere;
    # and per address, across usernames. See gateway.auth.Limits.claim_sign_in_attempt and ADR 0007.
    login_failures_per_username: str = "5/minute"
    login_failures_per_client: str = "20/minute"
    # Limits count per client address: the peer's, or the X-Forwarded-For of a request that carries the web
    # shop's or the admin's credential (caller_tokens "web" and "admin"; see gateway.context.client_address).
    # A proxy in front of the gateway must therefore not be trusted by address: there is no such setting.
    # memory:// is per process; several gateway instances must share e.g. async+redis://host:6379
    rate_limit_storage_uri: str = "async+memory://"

    @field_validator("jwt_secret", "order_token_secret")
    @classmethod
    def _long_enough(cls, secret: SecretStr | None) -> SecretStr | None:
        # RFC 7518 §3.2: an HS256 key has at least 256 bits (and so has any HMAC-SHA256 key worth the name).
        if secret is not None and len(secret.get_secret_value().encode()) < 32:
            raise ValueError("the secret must be at least 32 bytes")
        return secret
