"""The committed SDL (gateway/schema.graphql) is the contract the web shop, the admin and any GraphQL client
build on; a change to it must be deliberate. To accept a change, regenerate it:

    uv run python -c "from gateway.schema import printed_schema; print(printed_schema(), end='')" \
        > gateway/schema.graphql
"""

from pathlib import Path

from gateway.schema import printed_schema

SDL = Path(__file__).parent.parent / "schema.graphql"


def test_printed_schema_matches_the_committed_sdl() -> None:
    assert printed_schema() == SDL.read_text(), (
        "The GraphQL schema changed. If that is intended, regenerate gateway/schema.graphql (see this "
        "module's docstring) and commit it with the change."
    )
