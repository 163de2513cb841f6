"""Service credentials for `task up` and the bench: one token per calling app, and each app's environment.

Who accepts whom is declared by each service (``CALLERS`` in its api.py); ``ACCEPTED`` here hands each app
exactly the tokens of the callers it names, and a test keeps the two in step. See docs/adr/0007.
"""

import json
import secrets
from pathlib import Path

# The apps that call another app, each with its own token.
CALLING_APPS = ("gateway", "orders", "web", "admin")
# Which callers' tokens each app is given to check (its env prefix, upper-cased, + CALLER_TOKENS).
ACCEPTED = {
    "inventory": ("gateway",),
    "orders": ("gateway",),
    "payments": ("gateway", "orders"),
    "notifications": ("gateway",),
    # The gateway is public; the web shop's and the admin's tokens only make it believe their X-Forwarded-For.
    "gateway": ("web", "admin"),
}


def service_credentials(path: Path) -> dict[str, str]:
    """Generated once per data folder (mode 600) and kept across runs, like the role passwords: restarting
    `task up` must not invalidate what a running demo or bench already read."""
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    missing = {app: secrets.token_urlsafe(32) for app in CALLING_APPS if not stored.get(app)}
    if missing:
        stored |= missing
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600, exist_ok=True)
        path.chmod(0o600)
        path.write_text(json.dumps(stored, indent=2))
    return stored


def credential_environment(tokens: dict[str, str]) -> dict[str, str]:
    """The environment every app needs: ``<APP>_SERVICE_TOKEN`` (what it sends) for each calling app, and
    ``<APP>_CALLER_TOKENS`` (JSON, what it accepts) for each app that is called."""
    env = {f"{app.upper()}_SERVICE_TOKEN": tokens[app] for app in CALLING_APPS}
    for app, callers in ACCEPTED.items():
        env[f"{app.upper()}_CALLER_TOKENS"] = json.dumps({caller: tokens[caller] for caller in callers})
    return env
