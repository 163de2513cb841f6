"""Where the shop's signing secret comes from: carts and forms must survive a restart in development."""

from pathlib import Path

import pytest

from web.settings import SECRET_FILE_NAME, WebSettings, resolve_secret_key

pytestmark = pytest.mark.unit


def test_the_configured_secret_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LOCKSTOCK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("WEB_SECRET_KEY", "from-the-environment")
    assert resolve_secret_key(WebSettings()) == "from-the-environment"
    assert not (tmp_path / SECRET_FILE_NAME).exists()


def test_without_one_a_secret_is_generated_once_into_the_data_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("WEB_SECRET_KEY", raising=False)
    monkeypatch.setenv("LOCKSTOCK_DATA_DIR", str(tmp_path / "data"))
    first = resolve_secret_key(WebSettings())
    assert len(first) >= 32
    assert resolve_secret_key(WebSettings()) == first  # a restart keeps it, so carts stay valid
    assert (tmp_path / "data" / SECRET_FILE_NAME).stat().st_mode & 0o777 == 0o600


def test_without_a_data_dir_each_process_gets_a_random_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEB_SECRET_KEY", raising=False)
    monkeypatch.delenv("LOCKSTOCK_DATA_DIR", raising=False)
    assert resolve_secret_key(WebSettings()) != resolve_secret_key(WebSettings())
