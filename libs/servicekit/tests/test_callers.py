"""servicekit.callers: who a token belongs to, compared in constant time against every accepted token."""

import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from servicekit import callers
from servicekit.callers import allow, bearer, identify_caller

pytestmark = pytest.mark.unit

ACCEPTED = {name: SecretStr(f"token-of-{name}-0123456789") for name in ("gateway", "orders", "web")}


@pytest.fixture
def comparisons(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bytes, bytes]]:
    """Every hmac.compare_digest call identify_caller makes (the real function still decides)."""
    seen: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def counted(a: bytes, b: bytes) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(callers.hmac, "compare_digest", counted)
    return seen


@pytest.mark.parametrize(
    "presented", ["token-of-gateway-0123456789", "token-of-web-0123456789", "nobody's token", "x" * 500]
)
def test_every_accepted_token_is_compared_whichever_matches_and_always_at_one_length(comparisons, presented):
    identify_caller(presented, ACCEPTED)
    # No early exit (the first and the last match cost the same), and digests of one length: neither which
    # token came close nor a token's length shows in the time taken.
    assert len(comparisons) == len(ACCEPTED)
    assert {len(a) for a, _ in comparisons} == {len(b) for _, b in comparisons} == {32}


def test_a_token_is_named_for_its_caller_and_anything_else_for_nobody():
    assert identify_caller("token-of-orders-0123456789", ACCEPTED) == "orders"
    assert identify_caller("token-of-orders-012345678", ACCEPTED) is None
    assert identify_caller("", ACCEPTED) is None
    assert identify_caller(None, ACCEPTED) is None
    assert identify_caller("", {"empty": SecretStr("")}) is None


@given(st.text(max_size=200))
def test_no_made_up_token_passes(token):
    assert identify_caller(token, ACCEPTED) is None or token in {
        s.get_secret_value() for s in ACCEPTED.values()
    }


def test_only_a_bearer_header_carries_a_token():
    assert bearer("Bearer abc") == "abc"
    assert bearer("bearer  abc ") == "abc"
    assert bearer("Basic abc") is None
    assert bearer("Bearer ") is None
    assert bearer(None) is None


def test_a_policy_lets_readers_read_and_only_writers_write():
    policy = allow(reads=["gateway", "orders"], writes=["orders"])
    assert policy.allows("gateway", "GET")
    assert not policy.allows("gateway", "POST")
    assert not policy.allows("gateway", "PATCH")
    assert policy.allows("orders", "DELETE")
    assert not policy.allows("web", "GET")
