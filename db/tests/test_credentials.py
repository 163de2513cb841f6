"""`task up`'s service credentials: made once, private, kept; each app handed exactly what its policy names;
and no app started by the runner or the image believes a forwarded address on uvicorn's own say-so."""

import json
import stat
from pathlib import Path

import pytest

from inventory.api import CALLERS as INVENTORY_CALLERS
from lockstock_db.credentials import ACCEPTED, CALLING_APPS, credential_environment, service_credentials
from notifications.api import CALLERS as NOTIFICATIONS_CALLERS
from orders.api import CALLERS as ORDERS_CALLERS
from payments.api import CALLERS as PAYMENTS_CALLERS
from servicekit.callers import CallerPolicy
from servicekit.settings import KitSettings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def test_the_credentials_file_is_made_once_private_and_kept_across_runs(tmp_path):
    path = tmp_path / "data" / "service-credentials.json"
    first = service_credentials(path)

    assert set(first) == set(CALLING_APPS)
    assert len(set(first.values())) == len(CALLING_APPS)
    assert all(len(token) >= 40 for token in first.values())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert service_credentials(path) == first == json.loads(path.read_text())


def test_a_missing_app_is_added_without_changing_the_others(tmp_path):
    path = tmp_path / "service-credentials.json"
    path.write_text(json.dumps({"gateway": "kept-gateway-token"}))
    tokens = service_credentials(path)
    assert tokens["gateway"] == "kept-gateway-token"
    assert set(tokens) == set(CALLING_APPS)


@pytest.mark.parametrize(
    ("app", "policy"),
    [
        ("inventory", INVENTORY_CALLERS),
        ("orders", ORDERS_CALLERS),
        ("payments", PAYMENTS_CALLERS),
        ("notifications", NOTIFICATIONS_CALLERS),
    ],
)
def test_each_service_is_handed_the_tokens_of_exactly_the_callers_its_policy_names(
    app: str, policy: CallerPolicy
):
    assert set(ACCEPTED[app]) == policy.callers


def test_the_environment_gives_each_app_its_own_token_and_the_ones_it_accepts(monkeypatch):
    tokens = {app: f"token-of-{app}" for app in CALLING_APPS}
    env = credential_environment(tokens)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    class Payments(KitSettings, env_prefix="PAYMENTS_"):
        pass

    class Orders(KitSettings, env_prefix="ORDERS_"):
        pass

    payments, orders = Payments(), Orders()
    assert {k: v.get_secret_value() for k, v in payments.caller_tokens.items()} == {
        "gateway": "token-of-gateway",
        "orders": "token-of-orders",
    }
    assert payments.service_token is None
    assert orders.service_token is not None
    assert orders.service_token.get_secret_value() == "token-of-orders"
    assert set(orders.caller_tokens) == {"gateway"}


def test_every_app_the_runner_or_the_image_starts_ignores_proxy_headers():
    commands = [line for line in (ROOT / "Procfile").read_text().splitlines() if "uvicorn" in line]
    commands += [line for line in (ROOT / "Dockerfile").read_text().splitlines() if "exec uvicorn" in line]
    assert len(commands) == 8
    for command in commands:
        assert "--no-proxy-headers" in command, command
