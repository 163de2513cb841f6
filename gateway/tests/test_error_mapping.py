"""The one mapping from an upstream refusal to payload errors (gateway.mutations.user_errors), as a pure
unit: no server, no database. The integration tests (test_resolvers, test_e2e) show the same codes reaching
clients over HTTP."""

from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gateway.clients.base import UpstreamError, UpstreamRetryable
from gateway.errors import UPSTREAM_CODES, ErrorCode
from gateway.mutations import user_errors

pytestmark = pytest.mark.unit


def refusal(code: str, status: int = 409, **problem: Any) -> UpstreamError:
    return UpstreamError("orders", status, code, {"code": code, **problem})


def test_every_short_product_is_its_own_error_with_the_numbers() -> None:
    errors = user_errors(
        refusal(
            "insufficient_stock",
            items=[
                {"product_id": 7, "requested": 5, "available": 3},
                {"product_id": 9, "requested": 2, "available": 0},
            ],
        )
    )
    assert [(e.code, e.field, e.product_id, e.requested, e.available) for e in errors] == [
        (ErrorCode.INSUFFICIENT_STOCK, "items", "7", 5, 3),
        (ErrorCode.INSUFFICIENT_STOCK, "items", "9", 2, 0),
    ]
    assert errors[0].message == "Only 3 of product 7 left; 5 requested."


def test_validation_errors_name_the_schema_field_in_camel_case_under_the_prefix() -> None:
    problem = {"errors": [{"field": "items.0.product_id", "message": "bad"}, {"field": "", "message": "x"}]}
    errors = user_errors(refusal("validation_error", 422, **problem), prefix="input")
    assert [(e.code, e.field) for e in errors] == [
        (ErrorCode.INVALID_INPUT, "input.items.0.productId"),
        (ErrorCode.INVALID_INPUT, None),
    ]


def test_not_found_names_the_argument_and_says_what_is_missing() -> None:
    [error] = user_errors(refusal("order_not_found", 404), id_field="orderId")
    assert (error.code, error.field, error.message) == (
        ErrorCode.NOT_FOUND,
        "orderId",
        "There is no such order.",
    )


def test_a_refund_over_what_was_captured_says_how_much_is_left() -> None:
    [error] = user_errors(refusal("refund_exceeds_captured", refundable_cents=800))
    assert (error.field, error.available) == ("input.amountCents", 800)
    assert "800 cents" in error.message


@pytest.mark.parametrize(
    ("code", "field"),
    [("invalid_card", "input.cardNumber"), ("idempotency_key_reused", "input.idempotencyKey")],
)
def test_refusals_about_one_input_name_it(code: str, field: str) -> None:
    [error] = user_errors(refusal(code, 422))
    assert error.field == field


def test_an_unknown_code_or_a_server_failure_is_raised_again_not_shown() -> None:
    unknown = refusal("something_new")
    with pytest.raises(UpstreamError) as raised:
        user_errors(unknown)
    assert raised.value is unknown
    broken = refusal("order_not_found", 500)  # a 5xx is never a domain outcome, whatever its code says
    with pytest.raises(UpstreamError):
        user_errors(broken)


def test_payments_unavailable_is_the_one_5xx_with_a_payload_error() -> None:
    down = UpstreamRetryable("orders", 503, "payments_unavailable", {}, retry_after=2)
    [error] = user_errors(down)
    assert error.code is ErrorCode.PAYMENT_UNAVAILABLE


@given(
    code=st.sampled_from(sorted(UPSTREAM_CODES)),
    problem=st.dictionaries(
        st.sampled_from(["items", "product_ids", "errors", "refundable_cents", "available"]),
        st.one_of(st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=3)),
        max_size=3,
    ),
)
@example(code="insufficient_stock", problem={"items": [1]})
@example(code="unknown_product", problem={"product_ids": []})
@example(code="validation_error", problem={"errors": [1]})
def test_any_known_code_with_any_problem_body_maps_without_crashing(
    code: str, problem: dict[str, Any]
) -> None:
    """A service's body is not trusted: whatever shape it has, a known 4xx code maps to at least one
    error of that code: never a KeyError or TypeError (an INTERNAL), never no error at all (which reads as a
    success with nothing in it: a list of short products that were not objects did that)."""
    errors = user_errors(refusal(code, 409, **problem))
    assert errors
    assert {e.code for e in errors} == {UPSTREAM_CODES[code]}
