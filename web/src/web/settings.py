"""The web shop's settings (env prefix ``WEB_``) and where its signing secret comes from."""

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from servicekit.settings import KitSettings
from uikit.secret_key import load_secret_key, secret_file_name

SECRET_FILE_NAME = secret_file_name("web")


class WebSettings(KitSettings):
    model_config = SettingsConfigDict(env_prefix="WEB_", extra="ignore")

    service_name: str = "web"
    gateway_url: str = "http://127.0.0.1:8000/graphql"
    # Signs the cart cookie, the CSRF token and checkout snapshots. Unset: see resolve_secret_key().
    secret_key: SecretStr | None = None
    # The gateway is given this long per call; past it the shopper sees a 504 page, not a hanging tab.
    gateway_timeout_s: float = Field(default=10.0, gt=0, le=120)
    gateway_connect_timeout_s: float = Field(default=3.0, gt=0, le=60)
    # How long "Place order" keeps retrying while the same idempotency key is still in flight.
    checkout_in_use_deadline_s: float = Field(default=10.0, gt=0, le=60)
    products_per_page: int = Field(default=12, ge=1, le=100)
    # Request bodies over this are refused (413) before anything reads them; the shop's forms are tiny.
    max_body_bytes: int = Field(default=16 * 1024, ge=1024, le=1024 * 1024)
    cookie_secure: bool = False


def resolve_secret_key(settings: WebSettings) -> str:
    """WEB_SECRET_KEY if set; else the one kept in $LOCKSTOCK_DATA_DIR/.web-secret (so carts survive a
    restart in development); else a random key for this process only, with a warning."""
    return load_secret_key(settings.secret_key, app="web", env_var="WEB_SECRET_KEY", what="carts and forms")
