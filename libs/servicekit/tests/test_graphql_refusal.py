"""How the web shop and the admin read a gateway answer that is not data (servicekit.graphql_client.refusal):
the code, the message, and a Retry-After only when the gateway sent a sane number of seconds."""

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from servicekit.graphql_client import GraphQLAnswer, GraphQLErrorAnswer, refusal

pytestmark = pytest.mark.unit


def answer(**extensions: Any) -> GraphQLErrorAnswer:
    error = {"message": "The orders service cannot be reached right now.", "extensions": extensions}
    return GraphQLErrorAnswer(GraphQLAnswer(status=200, data=None, errors=[error]))


def test_a_service_down_is_retryable_with_the_gateway_s_seconds() -> None:
    refused = refusal(answer(code="SERVICE_UNAVAILABLE", retryAfter=2))

    assert (refused.code, refused.retry_after, refused.retryable) == ("SERVICE_UNAVAILABLE", 2, True)
    assert refused.message == "The orders service cannot be reached right now."


@pytest.mark.parametrize("code", ["RATE_LIMITED", "BAD_REQUEST", "INTERNAL", "UNAUTHENTICATED", None])
def test_other_codes_are_not_retryable(code: str | None) -> None:
    assert not refusal(answer(code=code)).retryable


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        (30, 30),
        ("30", 30),
        (1, 1),
        (3600, 3600),
        (0, None),
        (-5, None),
        (3601, None),
        (10**30, None),
        ("abc", None),
        ("１２", None),
        (True, None),
        (2.5, None),
        (None, None),
        ([3], None),
        ({"s": 3}, None),
    ],
)
def test_retry_after_is_kept_only_as_whole_seconds_from_1_to_3600(sent: Any, kept: int | None) -> None:
    assert refusal(answer(code="RATE_LIMITED", retryAfter=sent)).retry_after == kept


@given(
    st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(), st.lists, max_leaves=5)
)
def test_any_retry_after_is_a_sane_number_or_none(sent: Any) -> None:
    kept = refusal(answer(code="SERVICE_UNAVAILABLE", retryAfter=sent)).retry_after
    assert kept is None or 1 <= kept <= 3600


def test_an_answer_with_no_extensions_has_no_code() -> None:
    bare = GraphQLErrorAnswer(GraphQLAnswer(status=502, data=None, errors=[{"message": "bad gateway"}]))
    assert (refusal(bare).code, refusal(bare).retry_after) == (None, None)
