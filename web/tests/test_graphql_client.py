"""The committed client (web/src/web/graphql_client/) is exactly what ``uv run task codegen`` makes of
gateway/schema.graphql and web/graphql/operations.graphql today: a schema change or an operation edited
without regenerating fails here, saying which files differ. Nothing is skipped: without uv (or PyPI, the
first time tools/codegen's environment is made) it fails."""

import difflib
import os
import shutil
import subprocess
from pathlib import Path

WEB = Path(__file__).resolve().parent.parent
ROOT = WEB.parent
COMMITTED = WEB / "src" / "web" / "graphql_client"
TARGET_LINE = 'target_package_path = "src/web"'


def _files(package: Path) -> dict[str, str]:
    return {path.name: path.read_text() for path in sorted(package.glob("*.py"))}


def test_the_committed_client_is_what_codegen_generates(tmp_path: Path) -> None:
    uv = shutil.which("uv")
    assert uv, "uv is needed to regenerate the client (tools/codegen has an environment of its own)"
    # web/pyproject.toml's own [tool.ariadne-codegen], generating into tmp_path instead: every other path in
    # it (and so every "Source:" comment) is the same, relative to web/.
    config = (WEB / "pyproject.toml").read_text()
    assert config.count(TARGET_LINE) == 1, f"web/pyproject.toml no longer says {TARGET_LINE}"
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "pyproject.toml").write_text(
        config.replace(TARGET_LINE, f"target_package_path = {str(out)!r}")
    )
    env = {name: value for name, value in os.environ.items() if name != "VIRTUAL_ENV"}
    generated = subprocess.run(
        [
            *(uv, "run", "--project", str(ROOT / "tools" / "codegen"), "--frozen", "--quiet"),
            *("ariadne-codegen", "--config", str(tmp_path / "pyproject.toml"), "client"),
        ],
        cwd=WEB,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr

    fresh, committed = _files(out / "graphql_client"), _files(COMMITTED)
    assert fresh, generated.stdout
    stale = sorted(name for name in fresh.keys() | committed.keys() if fresh.get(name) != committed.get(name))
    diff = "".join(
        "".join(
            difflib.unified_diff(
                committed.get(name, "").splitlines(keepends=True),
                fresh.get(name, "").splitlines(keepends=True),
                f"committed/{name}",
                f"generated/{name}",
            )
        )
        for name in stale
    )
    assert not stale, (
        f"web/src/web/graphql_client is stale ({', '.join(stale)}): run `uv run task codegen` and commit "
        f"the result.\n{diff[:4000]}"
    )
