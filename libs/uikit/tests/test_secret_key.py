"""load_secret_key: the configured key, else one kept under LOCKSTOCK_DATA_DIR, else a random one."""

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pydantic import SecretStr

from uikit.secret_key import load_secret_key


def _load(configured: SecretStr | str | None = None) -> str:
    return load_secret_key(configured, app="demo", env_var="DEMO_SECRET_KEY", what="demo sessions")


def test_the_configured_key_wins_and_nothing_is_written(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LOCKSTOCK_DATA_DIR", str(tmp_path))
    assert _load(SecretStr("configured")) == "configured"
    assert _load("plain") == "plain"
    assert list(tmp_path.iterdir()) == []


def test_an_empty_configured_key_counts_as_unset(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LOCKSTOCK_DATA_DIR", str(tmp_path))
    key = _load(SecretStr(""))
    assert len(key) >= 32
    assert (tmp_path / ".demo-secret").read_text() == key


def test_the_kept_key_is_made_once_0600_and_no_temporary_file_is_left(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LOCKSTOCK_DATA_DIR", str(tmp_path / "data"))
    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: _load(), range(32)))
    assert len(keys) == 1  # processes starting at once agree on one key
    assert [p.name for p in (tmp_path / "data").iterdir()] == [".demo-secret"]
    assert (tmp_path / "data" / ".demo-secret").stat().st_mode & 0o777 == 0o600


def test_an_empty_kept_file_is_refused_not_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LOCKSTOCK_DATA_DIR", str(tmp_path))
    (tmp_path / ".demo-secret").write_text("\n")
    with pytest.raises(RuntimeError, match="is empty"):
        _load()


def test_without_a_data_dir_each_call_gets_a_random_key_and_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("LOCKSTOCK_DATA_DIR", raising=False)
    with caplog.at_level(logging.WARNING):
        assert _load() != _load()
    assert "DEMO_SECRET_KEY is not set" in caplog.text
    assert "demo sessions end" in caplog.text
