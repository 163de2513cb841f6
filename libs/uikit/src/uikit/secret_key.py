"""Where a UI's signing secret comes from (the shop's cart cookie and forms, the admin's session and forms).

The configured one if set; else one generated once and kept in ``$LOCKSTOCK_DATA_DIR/.<app>-secret`` (so
carts, forms and sessions survive a restart in development); else a random one for this process only, with
a warning."""

import logging
import os
import secrets
from pathlib import Path

from pydantic import SecretStr

# The standard library's logging: configure_logging renders it as JSON like the rest (and tests can see it).
log = logging.getLogger(__name__)

DATA_DIR_ENV = "LOCKSTOCK_DATA_DIR"


def secret_file_name(app: str) -> str:
    return f".{app}-secret"


def load_secret_key(configured: SecretStr | str | None, *, app: str, env_var: str, what: str) -> str:
    """``configured`` (the app's ``<APP>_SECRET_KEY``; empty counts as unset) or the kept or a random one.

    ``env_var`` and ``what`` (what ends with a random key, e.g. "carts and forms") only word the warning."""
    value = configured.get_secret_value() if isinstance(configured, SecretStr) else configured
    if value:
        return value
    data_dir = os.environ.get(DATA_DIR_ENV)
    if data_dir:
        return _kept_key(Path(data_dir) / secret_file_name(app))
    log.warning(
        "%s is not set (nor %s): using a random key for this process only, so %s end when it does",
        env_var,
        DATA_DIR_ENV,
        what,
    )
    return secrets.token_urlsafe(48)


def _kept_key(path: Path) -> str:
    """The key in ``path``, made (mode 0600) if there is none. Written to a temporary file and linked into
    place, so no process ever reads a half-written key, and two starting at once agree on the first one."""
    try:
        existing = path.read_text().strip()
    except FileNotFoundError:
        existing = None
    if existing is None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f"{path.name}.{secrets.token_hex(8)}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as file:
                file.write(secrets.token_urlsafe(48))
                file.flush()
                os.fsync(file.fileno())
            try:
                os.link(temporary, path)
                log.info("secret key generated in %s", path)
            except FileExistsError:
                pass  # another process was first: its key it is
        finally:
            temporary.unlink(missing_ok=True)
        existing = path.read_text().strip()
    if not existing:
        raise RuntimeError(f"{path} is empty: delete it (a new key is made) or put a key in it")
    return existing
