"""Where the admin's signing key comes from."""

import logging
import stat
from pathlib import Path

import pytest

from admin.settings import AdminSettings, resolve_secret_key

pytestmark = pytest.mark.unit


def test_an_explicit_secret_key_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LOCKSTOCK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ADMIN_SECRET_KEY", "from-the-environment")
    assert resolve_secret_key(AdminSettings()) == "from-the-environment"
    assert not (tmp_path / ".admin-secret").exists()


def test_a_dev_key_is_made_once_under_the_data_dir_and_kept(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("ADMIN_SECRET_KEY", raising=False)
    monkeypatch.setenv("LOCKSTOCK_DATA_DIR", str(tmp_path / "data"))
    first = resolve_secret_key(AdminSettings())
    assert len(first) >= 32
    assert resolve_secret_key(AdminSettings()) == first  # a restart keeps sessions valid
    assert stat.S_IMODE((tmp_path / "data" / ".admin-secret").stat().st_mode) == 0o600


def test_without_key_or_data_dir_each_process_gets_a_random_key_and_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("ADMIN_SECRET_KEY", raising=False)
    monkeypatch.delenv("LOCKSTOCK_DATA_DIR", raising=False)
    with caplog.at_level(logging.WARNING):
        keys = {resolve_secret_key(AdminSettings()) for _ in range(2)}
    assert len(keys) == 2
    assert "ADMIN_SECRET_KEY is not set" in caplog.text


def test_the_session_cookie_is_secure_unless_explicitly_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    assert AdminSettings().cookie_secure is True
    monkeypatch.setenv("ADMIN_COOKIE_SECURE", "false")
    assert AdminSettings().cookie_secure is False
