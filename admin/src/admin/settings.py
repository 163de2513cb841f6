"""The admin's settings (env prefix ``ADMIN_``) and where its signing secret comes from."""

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from servicekit.settings import KitSettings
from uikit.secret_key import load_secret_key


class AdminSettings(KitSettings):
    model_config = SettingsConfigDict(env_prefix="ADMIN_", extra="ignore")

    service_name: str = "admin"
    gateway_url: str = "http://127.0.0.1:8000/graphql"
    gateway_timeout_s: float = Field(default=10.0, gt=0)
    # Signs the session cookie and the CSRF tokens. Unset in development: see `resolve_secret_key`.
    secret_key: SecretStr | None = None
    # Chromium and Firefox treat http://127.0.0.1 and http://localhost as secure contexts, so a Secure cookie
    # works for local development over plain http; only set ADMIN_COOKIE_SECURE=false to serve the admin
    # over plain http on some other host name (never do that in production).
    cookie_secure: bool = True
    session_max_age_s: int = Field(default=8 * 3600, ge=60)
    csrf_max_age_s: int = Field(default=8 * 3600, ge=60)
    page_size: int = Field(default=20, ge=1, le=100)
    # Request bodies over this are refused (413) before anything reads them; the admin's forms are small.
    max_body_bytes: int = Field(default=16 * 1024, ge=1024, le=1024 * 1024)


def resolve_secret_key(settings: AdminSettings) -> str:
    """ADMIN_SECRET_KEY if set; else the one kept in $LOCKSTOCK_DATA_DIR/.admin-secret (so sessions survive
    restarts in development); else a random key for this process only, with a warning (sessions end at
    restart)."""
    return load_secret_key(
        settings.secret_key, app="admin", env_var="ADMIN_SECRET_KEY", what="admin sessions"
    )
