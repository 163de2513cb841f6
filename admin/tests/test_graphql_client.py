"""The committed client (admin/src/admin/graphql_client/) is exactly what ``uv run task codegen`` makes of
gateway/schema.graphql and admin/graphql/operations.graphql today: a schema change or an operation edited
without regenerating fails here, saying which files differ. Nothing is skipped: without uv (or PyPI, the
first time tools/codegen's environment is made) it fails."""

from pathlib import Path

from devstack.testing import stale_graphql_client

ADMIN = Path(__file__).resolve().parent.parent


def test_the_committed_client_is_what_codegen_generates(tmp_path: Path) -> None:
    stale = stale_graphql_client(ADMIN, "admin", tmp_path)
    assert stale is None, (
        f"admin/src/admin/graphql_client is stale: run `uv run task codegen` and commit. {stale}"
    )
