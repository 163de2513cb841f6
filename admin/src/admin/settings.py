import logging
import os
import secrets
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from servicekit.settings import KitSettings

log = logging.getLogger(__name__)


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
    """ADMIN_SECRET_KEY if set; else one kept under LOCKSTOCK_DATA_DIR (so sessions survive restarts in
    development); else a random key for this process only, with a warning (sessions end at restart)."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    data_dir = os.environ.get("LOCKSTOCK_DATA_DIR")
    if data_dir:
        path = Path(data_dir) / ".admin-secret"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as file:
                file.write(secrets.token_urlsafe(48))
        return path.read_text().strip()
    log.warning(
        "ADMIN_SECRET_KEY is not set: using a random key, so admin sessions end when this process does"
    )
    return secrets.token_urlsafe(48)
