"""Hostile edges of /graphql: JSON no parser should hold, undefined fragments, hostile bodies of every kind,
and upstreams that are down or busy. Always a coded answer, never a 500, never INTERNAL for a retryable
failure, and nothing written."""

from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devstack.hostile import hostile_json_requests
from devstack.testing import LiveServer
from gateway.app import create_app
from gateway.settings import GatewaySettings
from servicekit.db import plain_url
from servicekit.sync import run_sync

from .conftest import Gql, error_codes

PLACE_ORDER = """mutation($i: PlaceOrderInput!) {
  placeOrder(input: $i) { order { id } errors { code field message } } }"""


def _post(url: str, body: bytes, content_type: str | None = "application/json") -> httpx.Response:
    headers = {"content-type": content_type} if content_type else {}
    return httpx.post(f"{url}/graphql", content=body, headers=headers, timeout=30)


def _only_code(response: httpx.Response) -> str:
    body = response.json()
    [error] = body["errors"]
    code: str = error["extensions"]["code"]
    return code


def test_a_variable_of_4301_digits_is_a_bad_request(gateway_url: str) -> None:
    body = (
        b'{"query": "query($id: ID!) { product(id: $id) { id } }", "variables": {"id": '
        + b"9" * 4_301
        + b"}}"
    )
    response = _post(gateway_url, body)
    assert response.status_code == 400, response.text
    assert _only_code(response) == "BAD_REQUEST"
    assert "number" in response.json()["errors"][0]["message"]


def test_variables_nested_5000_arrays_deep_are_a_bad_request(gateway_url: str) -> None:
    deep = b"[" * 5_000 + b"1" + b"]" * 5_000
    body = b'{"query": "query($id: ID!) { product(id: $id) { id } }", "variables": {"id": ' + deep + b"}}"
    response = _post(gateway_url, body)
    assert response.status_code == 400, response.text
    assert _only_code(response) == "BAD_REQUEST"


def test_variables_nested_deeper_than_any_operation_needs_are_refused_before_coercion(
    gateway_url: str,
) -> None:
    # 200 deep parses fine; graphql-core would then recurse through it.
    deep = b"[" * 200 + b"1" + b"]" * 200
    response = _post(
        gateway_url, b'{"query": "{ products { nodes { id } } }", "variables": {"x": ' + deep + b"}}"
    )
    assert response.status_code == 400
    assert _only_code(response) == "BAD_REQUEST"


def test_a_body_that_is_not_utf8_is_a_bad_request(gateway_url: str) -> None:
    response = _post(gateway_url, b'{"query": "{ products { nodes { id } } }\xff"}')
    assert response.status_code == 400
    assert _only_code(response) == "BAD_REQUEST"


async def test_an_undefined_fragment_is_a_bad_request_that_names_it(
    gql: Gql, capfd: pytest.CaptureFixture[str]
) -> None:
    body = await gql("{ ...Nope }")
    assert error_codes(body) == ["BAD_REQUEST"]
    assert body["errors"][0]["message"] == "Unknown fragment 'Nope'."
    captured = capfd.readouterr()
    assert "Traceback" not in captured.out + captured.err
    assert "KeyError" not in captured.out + captured.err


async def test_a_cycle_of_fragments_is_a_bad_request(gql: Gql) -> None:
    body = await gql("query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }")
    assert set(error_codes(body)) == {"BAD_REQUEST"}


# ---------------------------------------------------------------------------------------------------------
# Upstreams down or busy: a retryable code, never INTERNAL.


def _unavailable(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        503,
        json={"type": "urn:x", "title": "t", "status": 503, "detail": "d", "code": "database_unavailable"},
        headers={"content-type": "application/problem+json", "retry-after": "3"},
    )


class Answers:
    def __init__(self) -> None:
        self.inventory = _unavailable
        self.orders = _unavailable

    def transport(self, name: str) -> httpx.MockTransport:
        return httpx.MockTransport(lambda request: getattr(self, name)(request))


@pytest.fixture(scope="module")
def answers() -> Answers:
    return Answers()


@pytest.fixture(scope="module")
def down_gateway_url(answers: Answers, gateway_settings: GatewaySettings) -> Iterator[str]:
    app = create_app(
        gateway_settings, transports={name: answers.transport(name) for name in ("inventory", "orders")}
    )
    with LiveServer(app) as server:
        yield server.url


QUERIES_AND_MUTATIONS = [
    ("{ products { nodes { id } } }", {}, None),
    ('{ product(id: "1") { id } }', {}, None),
    ('{ order(id: "1") { id } }', {}, "admin"),  # without a token or an admin, orders is never asked
    (PLACE_ORDER, {"i": {"items": [{"productId": "1", "qty": 1}]}}, None),
    ("{ orders { nodes { id } } }", {}, "admin"),
    ('mutation { cancelOrder(orderId: "1") { errors { code } } }', {}, "admin"),
    (
        'mutation { createProduct(input: {name: "x", priceCents: 1, stockQty: 1}) { errors { code } } }',
        {},
        "admin",
    ),
    ('mutation { adjustStock(input: {productId: "1", delta: 1}) { errors { code } } }', {}, "admin"),
]


@pytest.mark.parametrize(("query", "variables", "who"), QUERIES_AND_MUTATIONS)
async def test_an_upstream_503_is_service_unavailable_with_retry_after(
    gql: Gql, down_gateway_url: str, admin_token: str, query: str, variables: dict[str, Any], who: str | None
) -> None:
    body = await gql(query, variables, url=down_gateway_url, token=admin_token if who else None)
    assert error_codes(body) == ["SERVICE_UNAVAILABLE"], body
    assert body["errors"][0]["extensions"]["retryAfter"] == 3
    assert "INTERNAL" not in str(body)


async def test_an_unreachable_upstream_is_service_unavailable(
    gql: Gql, down_gateway_url: str, answers: Answers
) -> None:
    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    answers.inventory = refused
    try:
        body = await gql("{ products { nodes { id } } }", url=down_gateway_url)
    finally:
        answers.inventory = _unavailable
    assert error_codes(body) == ["SERVICE_UNAVAILABLE"]
    assert body["errors"][0]["extensions"]["retryAfter"] == 1
    assert "refused" not in str(body)


async def test_payments_unavailable_on_capture_stays_a_payload_error(
    gql: Gql, down_gateway_url: str, answers: Answers, admin_token: str
) -> None:
    def payments_down(request: httpx.Request) -> httpx.Response:
        problem = {
            "type": "urn:x",
            "title": "t",
            "status": 503,
            "detail": "d",
            "code": "payments_unavailable",
        }
        return httpx.Response(503, json=problem, headers={"retry-after": "2"})

    answers.orders = payments_down
    try:
        body = await gql(
            'mutation { capturePayment(orderId: "1") { errors { code } } }',
            url=down_gateway_url,
            token=admin_token,
        )
    finally:
        answers.orders = _unavailable
    assert body["data"]["capturePayment"]["errors"] == [{"code": "PAYMENT_UNAVAILABLE"}]


async def test_sign_in_while_the_accounts_database_is_down_is_service_unavailable(
    gql: Gql, gateway_settings: GatewaySettings
) -> None:
    nowhere = gateway_settings.model_copy(
        update={"database_url": "postgresql+asyncpg://u:p@127.0.0.1:9/none"}
    )
    with LiveServer(create_app(nowhere)) as server:
        body = await gql(
            'mutation { login(username: "a", password: "b") { token errors { code } } }', url=server.url
        )
    assert error_codes(body) == ["SERVICE_UNAVAILABLE"], body


# ---------------------------------------------------------------------------------------------------------
# The property: hostile bodies never make a 500, always carry a code, and write nothing.


# A product that does not exist: a body that turns out valid after all is refused too (UNKNOWN_PRODUCT), so
# "nothing written" holds for every example.
VALID_PLACE_ORDER = {
    "query": PLACE_ORDER,
    "variables": {"i": {"items": [{"productId": "999999999", "qty": 1}], "idempotencyKey": "hostile-1"}},
}
CODES = {"BAD_REQUEST", "RATE_LIMITED", "SERVICE_UNAVAILABLE"}


def _counts(admin_url: str) -> tuple[int, int, int]:
    async def count() -> tuple[int, int, int]:
        conn = await asyncpg.connect(plain_url(admin_url))
        try:
            row = await conn.fetchrow(
                "SELECT (SELECT count(*) FROM orders.orders) AS o,"
                " (SELECT count(*) FROM inventory.products) AS p,"
                " (SELECT coalesce(sum(stock_qty), 0) FROM inventory.products) AS s"
            )
            assert row is not None
            return int(row["o"]), int(row["p"]), int(row["s"])
        finally:
            await conn.close()

    return run_sync(count())


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(request=hostile_json_requests(VALID_PLACE_ORDER), via=st.sampled_from(["POST", "GET"]))
def test_hostile_bodies_get_a_coded_refusal_and_write_nothing(
    gateway_url: str, migrated_admin_url: str, request: tuple[str | None, bytes], via: str
) -> None:
    content_type, body = request
    before = _counts(migrated_admin_url)
    if via == "GET" and len(body) < 4_000:  # a URL has room for a short one only
        # The same hostile text as GET's variables parameter.
        response = httpx.get(
            f"{gateway_url}/graphql",
            params={
                "query": PLACE_ORDER.replace("mutation", "query"),
                "variables": body.decode("utf-8", "replace"),
            },
            timeout=30,
        )
    else:
        response = _post(gateway_url, body, content_type)
    assert response.status_code < 500, response.text[:500]
    answer = response.json()
    for error in answer.get("errors") or []:
        assert error["extensions"]["code"] in CODES, answer
    payload = (answer.get("data") or {}).get("placeOrder")
    if payload is not None:
        assert payload["order"] is None, payload
        assert payload["errors"], payload
    assert _counts(migrated_admin_url) == before
