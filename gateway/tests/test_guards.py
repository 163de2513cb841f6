"""Guards: admin fields need an admin token; bad, deep, large or hostile requests get a coded error, never
a 500; rate limits and the sign-in throttle answer RATE_LIMITED with retryAfter."""

import asyncio
import secrets
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devstack.testing import LiveServer
from gateway.app import create_app
from gateway.auth import create_account
from gateway.settings import GatewaySettings
from servicekit.db import create_engine

from .conftest import Gql, error_codes

ADMIN_OPERATIONS = {
    "orders": "{ orders { nodes { id } } }",
    "capturePayment": 'mutation { capturePayment(orderId: "1") { errors { code } } }',
    "cancelOrder": 'mutation { cancelOrder(orderId: "1") { errors { code } } }',
    "refundPayment": 'mutation { refundPayment(input: {orderId: "1", amountCents: 1, idempotencyKey: "k"}) '
    "{ errors { code } } }",
    "createProduct": 'mutation { createProduct(input: {name: "x", priceCents: 1, stockQty: 1}) '
    "{ errors { code } } }",
    "updateProduct": 'mutation { updateProduct(input: {id: "1", name: "x"}) { errors { code } } }',
    "adjustStock": 'mutation { adjustStock(input: {productId: "1", delta: 1}) { errors { code } } }',
    "emails": "{ emails { nodes { id } } }",
    "email": '{ email(id: "1") { id } }',
    "webhookEventTypes": "{ webhookEventTypes }",
    "webhookEndpoints": "{ webhookEndpoints { id } }",
    "webhookEndpoint": '{ webhookEndpoint(id: "1") { id } }',
    "registerWebhookEndpoint": 'mutation { registerWebhookEndpoint(url: "https://example.com/", '
    'eventTypes: ["*"]) { errors { code } } }',
    "deleteWebhookEndpoint": 'mutation { deleteWebhookEndpoint(id: "1") { errors { code } } }',
    "redeliverWebhook": 'mutation { redeliverWebhook(deliveryId: "1") { errors { code } } }',
    "lowStockAlerts": "{ lowStockAlerts { id } }",
    "salesReport": "{ salesReport { units } }",
}


@pytest.fixture(scope="module")
def staff_token(gateway_url: str, gateway_settings: GatewaySettings) -> str:
    username, password = f"staff-{secrets.token_hex(4)}", secrets.token_urlsafe(18)

    async def create() -> None:
        engine = create_engine(gateway_settings)
        try:
            await create_account(engine, username, password, "staff")
        finally:
            await engine.dispose()

    asyncio.run(create())
    response = httpx.post(
        f"{gateway_url}/graphql",
        json={
            "query": "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }",
            "variables": {"u": username, "p": password},
        },
    )
    token: str = response.json()["data"]["login"]["token"]
    return token


@pytest.mark.parametrize("field", ADMIN_OPERATIONS)
async def test_admin_fields_refuse_a_caller_without_a_token(gql: Gql, field: str) -> None:
    body = await gql(ADMIN_OPERATIONS[field])
    assert error_codes(body) == ["UNAUTHENTICATED"]
    # Nothing answered: the data is null, or (for a nullable field such as email) the field is.
    assert body["data"] is None or set(body["data"].values()) == {None}


@pytest.mark.parametrize("field", ADMIN_OPERATIONS)
async def test_admin_fields_refuse_a_signed_in_non_admin(gql: Gql, field: str, staff_token: str) -> None:
    body = await gql(ADMIN_OPERATIONS[field], token=staff_token)
    assert error_codes(body) == ["FORBIDDEN"]


@pytest.mark.parametrize("field", ADMIN_OPERATIONS)
async def test_admin_fields_refuse_forged_and_expired_tokens(
    gql: Gql, field: str, gateway_settings: GatewaySettings
) -> None:
    assert gateway_settings.jwt_secret
    claims = {"sub": "x", "role": "admin", "iss": "lockstock-gateway"}
    expired = jwt.encode(
        claims | {"exp": datetime.now(UTC) - timedelta(minutes=1)},
        gateway_settings.jwt_secret.get_secret_value(),
        algorithm="HS256",
    )
    forged = jwt.encode(
        claims | {"exp": datetime.now(UTC) + timedelta(minutes=5)},
        "not-the-secret-but-long-enough-for-hs256",
        algorithm="HS256",
    )
    unsigned = jwt.encode(claims | {"exp": datetime.now(UTC) + timedelta(minutes=5)}, None, algorithm="none")
    for token in (expired, forged, unsigned, "garbage"):
        assert error_codes(await gql(ADMIN_OPERATIONS[field], token=token)) == ["UNAUTHENTICATED"]


async def test_an_order_read_with_a_bad_token_says_so_and_staff_need_the_access_token(
    gql: Gql, staff_token: str
) -> None:
    query = 'query($t: String) { order(id: "1", accessToken: $t) { id } }'
    # A caller who sent a token meant to be signed in: told it is not, whatever the order.
    assert error_codes(await gql(query, token="garbage")) == ["UNAUTHENTICATED"]
    # Signed in but not an admin: like any shopper, null without the order's own token.
    assert await gql(query, {"t": "not-it"}, token=staff_token) == {"data": {"order": None}}


async def test_public_fields_need_no_token(gql: Gql) -> None:
    body = await gql("{ products(first: 1) { nodes { id } } }")
    assert "errors" not in body


async def test_login_refuses_a_wrong_password_and_an_unknown_user_alike(
    gql: Gql, admin_credentials: tuple[str, str]
) -> None:
    login = (
        "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token errors { code } } }"
    )
    username, _ = admin_credentials
    for variables in ({"u": username, "p": "wrong password"}, {"u": "nobody-here", "p": "whatever it is"}):
        payload = (await gql(login, variables))["data"]["login"]
        assert payload == {"token": None, "errors": [{"code": "INVALID_CREDENTIALS"}]}


async def test_a_token_from_login_expires_as_configured(gql: Gql, admin_credentials: tuple[str, str]) -> None:
    username, password = admin_credentials
    payload = (
        await gql(
            "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token expiresAt } }",
            {"u": username, "p": password},
        )
    )["data"]["login"]
    claims = jwt.decode(payload["token"], options={"verify_signature": False})
    # The token names its session; the role is read from the account on every request (ADR 0010).
    assert claims["sub"] == username
    assert "role" not in claims
    assert claims["sid"]
    assert 3_500 <= claims["exp"] - datetime.now(UTC).timestamp() <= 3_600


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ("{ products { nodes { id }", {}),  # malformed
        ("{ nope }", {}),  # unknown field
        ("query($n: Int!) { products(first: $n) { nodes { id } } }", {"n": 2**70}),  # beyond 64 bits
        ("query($n: Int!) { products(first: $n) { nodes { id } } }", {"n": "ten"}),
        ("query($n: Int!) { products(first: $n) { nodes { id } } }", {"n": -1}),
        ("query($n: Int!) { products(first: $n) { nodes { id } } }", {"n": 101}),
        ('{ products(after: "not-a-cursor") { nodes { id } } }', {}),
        ('{ products(after: "-5") { nodes { id } } }', {}),
        ("query($id: ID!) { product(id: $id) { id } }", {"id": {"nested": True}}),
        ("query($id: ID!) { product(id: $id) { id } }", {}),  # missing variable
        (
            'mutation($p: Cents!) { createProduct(input: {name: "x", priceCents: $p, stockQty: 1}) '
            "{ errors { code } } }",
            {"p": 2**80},
        ),
        (
            'mutation { createProduct(input: {name: "x", priceCents: "12", stockQty: 1}) '
            "{ errors { code } } }",
            {},
        ),
        ("query { orders(status: NOT_A_STATUS) { nodes { id } } }", {}),
    ],
)
async def test_bad_requests_get_bad_request_never_a_500(
    gql: Gql, query: str, variables: dict[str, Any]
) -> None:
    body = await gql(query, variables)
    codes = error_codes(body)
    assert codes, body
    assert set(codes) == {"BAD_REQUEST"}, body
    assert all("Traceback" not in e["message"] for e in body["errors"])


async def test_a_string_id_that_cannot_exist_is_simply_not_found(gql: Gql) -> None:
    query = "query($id: ID!) { product(id: $id) { id } order(id: $id) { id } }"
    for raw in ("abc", "0", "-1", "1e3", str(2**64)):
        assert await gql(query, {"id": raw}) == {"data": {"product": None, "order": None}}, raw
    # Spaces around an id are forgiven (parse_id strips them): " 1 " is the id 1, whatever that finds.
    assert await gql(query, {"id": " 1 "}) == await gql(query, {"id": "1"})


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ({"productId": "abc", "qty": 1}, "INVALID_INPUT"),
        ({"productId": str(2**64), "qty": 1}, "INVALID_INPUT"),
        ({"productId": "1", "qty": 0}, "INVALID_QUANTITY"),
        ({"productId": "1", "qty": -5}, "INVALID_QUANTITY"),
        ({"productId": "1", "qty": 1001}, "INVALID_QUANTITY"),
    ],
)
async def test_bad_order_lines_are_refused_in_the_payload(gql: Gql, line: dict[str, Any], code: str) -> None:
    body = await gql(
        "mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { order { id } errors { code field } } }",
        {"i": {"items": [line]}},
    )
    assert body["data"]["placeOrder"]["order"] is None
    assert [e["code"] for e in body["data"]["placeOrder"]["errors"]] == [code]


async def test_an_empty_order_and_a_bad_idempotency_key_are_invalid_input(gql: Gql) -> None:
    query = "mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { order { id } errors { code field } } }"
    empty = await gql(query, {"i": {"items": []}})
    assert [e["code"] for e in empty["data"]["placeOrder"]["errors"]] == ["INVALID_INPUT"]
    long_key = await gql(query, {"i": {"items": [{"productId": "1", "qty": 1}], "idempotencyKey": "k" * 256}})
    assert [e["field"] for e in long_key["data"]["placeOrder"]["errors"]] == ["input.idempotencyKey"]


async def test_a_megabyte_body_is_refused_before_parsing(gateway_url: str, http: httpx.AsyncClient) -> None:
    response = await http.post(
        f"{gateway_url}/graphql",
        json={
            "query": "mutation($u: String!) { login(username: $u, password: $u) { token } }",
            "variables": {"u": "x" * 1_000_000},
        },
    )
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_a_body_that_is_not_json_gets_bad_request(gateway_url: str, http: httpx.AsyncClient) -> None:
    response = await http.post(
        f"{gateway_url}/graphql", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_a_mutation_over_get_is_refused(gateway_url: str, http: httpx.AsyncClient) -> None:
    response = await http.get(
        f"{gateway_url}/graphql",
        params={"query": 'mutation { login(username: "a", password: "b") { token } }'},
    )
    assert 400 <= response.status_code < 500


_HOSTILE = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**31 - 2, max_value=2**31 + 2)
    | st.floats(allow_nan=False, allow_infinity=False)  # NaN and inf are not JSON: no client can send them
    | st.text(max_size=30)
    | st.lists(st.integers(), max_size=3)
)
_LINE = (
    st.fixed_dictionaries({"productId": _HOSTILE | st.integers(1, 5).map(str), "qty": _HOSTILE}) | _HOSTILE
)
_ADDRESS = (
    st.fixed_dictionaries(
        {
            "line1": _HOSTILE,
            "city": _HOSTILE,
            "postalCode": _HOSTILE,
            "country": _HOSTILE | st.text(max_size=3),
        },
        optional={"line2": _HOSTILE},
    )
    | _HOSTILE
)
_CUSTOMER = st.fixed_dictionaries({"email": _HOSTILE | st.emails(), "name": _HOSTILE, "address": _ADDRESS})
_ORDER_INPUT = (
    st.fixed_dictionaries(
        {"items": st.lists(_LINE, max_size=4) | _HOSTILE},
        optional={"idempotencyKey": _HOSTILE, "customer": _CUSTOMER | _HOSTILE},
    )
    | _HOSTILE
)
_ERROR_CODES = {
    "INSUFFICIENT_STOCK", "UNKNOWN_PRODUCT", "INVALID_QUANTITY", "INVALID_INPUT", "IDEMPOTENCY_KEY_REUSED",
    "IDEMPOTENCY_KEY_IN_USE",
}  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(order_input=_ORDER_INPUT)
def test_hostile_order_input_never_makes_a_500(gateway_url: str, order_input: Any) -> None:
    query = """mutation($i: PlaceOrderInput!) {
      placeOrder(input: $i) { order { id } errors { code field message } } }"""
    response = httpx.post(
        f"{gateway_url}/graphql", json={"query": query, "variables": {"i": order_input}}, timeout=30
    )
    assert response.status_code < 500, response.text
    body = response.json()
    for error in body.get("errors", []):
        assert error["extensions"]["code"] == "BAD_REQUEST", body
    payload = (body.get("data") or {}).get("placeOrder")
    if payload is not None:
        assert (payload["order"] is None) == bool(payload["errors"]), payload
        assert {e["code"] for e in payload["errors"]} <= _ERROR_CODES, payload


_AUTHORIZE_INPUT = (
    st.fixed_dictionaries(
        {"orderId": _HOSTILE | st.integers(1, 5).map(str), "accessToken": _HOSTILE, "cardNumber": _HOSTILE}
    )
    | _HOSTILE
)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(authorize_input=_AUTHORIZE_INPUT)
def test_hostile_authorize_input_never_makes_a_500(gateway_url: str, authorize_input: Any) -> None:
    query = """mutation($i: AuthorizePaymentInput!) {
      authorizePayment(input: $i) { order { id } errors { code field message } } }"""
    response = httpx.post(
        f"{gateway_url}/graphql", json={"query": query, "variables": {"i": authorize_input}}, timeout=30
    )
    assert response.status_code < 500, response.text
    body = response.json()
    for error in body.get("errors", []):
        assert error["extensions"]["code"] == "BAD_REQUEST", body
    payload = (body.get("data") or {}).get("authorizePayment")
    if payload is not None:
        # Without the order's token, every answer is the one a missing order gets.
        assert payload["order"] is None
        assert [e["code"] for e in payload["errors"]] == ["NOT_FOUND"], payload


# A gateway of its own with low limits, so the shared one is never throttled.
@pytest.fixture
def strict_gateway_url(gateway_settings: GatewaySettings) -> Iterator[str]:
    strict = gateway_settings.model_copy(
        update={
            "max_query_depth": 3,
            "max_aliases": 3,
            "max_query_tokens": 200,
            "rate_limit_place_order": "3/minute",
            "rate_limit_authorize_payment": "3/minute",
            "rate_limit_login": "6/minute",
            "login_failures_per_username": "2/minute",
            "login_failures_per_client": "100/minute",
            "introspection": False,
            "graphiql": False,
        }
    )
    with LiveServer(create_app(strict)) as server:
        yield server.url


async def test_over_deep_too_long_and_alias_heavy_queries_get_bad_request(
    gql: Gql, strict_gateway_url: str
) -> None:
    deep = "{ orders { nodes { items { product { id } } } } }"
    aliases = "{ " + " ".join(f"{name}: products {{ nodes {{ id }} }}" for name in "abcd") + " }"
    long_query = "{ products { nodes { " + " ".join(["id"] * 300) + " } } }"
    for query in (deep, aliases, long_query):
        body = await gql(query, url=strict_gateway_url)
        assert error_codes(body) == ["BAD_REQUEST"], (query[:40], body)


async def test_introspection_can_be_switched_off(
    gql: Gql, strict_gateway_url: str, http: httpx.AsyncClient
) -> None:
    assert set(error_codes(await gql("{ __schema { types { name } } }", url=strict_gateway_url))) == {
        "BAD_REQUEST"
    }
    off = await http.get(f"{strict_gateway_url}/graphql", headers={"accept": "text/html"})
    assert "graphiql" not in off.text.lower()


async def test_graphiql_and_introspection_are_on_by_default(
    gql: Gql, gateway_url: str, http: httpx.AsyncClient
) -> None:
    assert "errors" not in await gql("{ __schema { queryType { name } } }")
    page = await http.get(f"{gateway_url}/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()


async def test_place_order_is_rate_limited_per_client(gql: Gql, strict_gateway_url: str) -> None:
    query = "mutation { placeOrder(input: {items: []}) { errors { code } } }"
    for _ in range(3):
        assert "errors" not in await gql(query, url=strict_gateway_url)
    limited = await gql(query, url=strict_gateway_url)
    assert error_codes(limited) == ["RATE_LIMITED"]
    assert 1 <= limited["errors"][0]["extensions"]["retryAfter"] <= 60


async def test_authorize_payment_is_rate_limited_per_client(gql: Gql, strict_gateway_url: str) -> None:
    # Each attempt would ask the card processor: the limit is what stops card testing through the shop.
    query = """mutation { authorizePayment(input: {orderId: "1", accessToken: "guess", cardNumber: "4242"})
      { errors { code } } }"""
    for _ in range(3):
        answer = await gql(query, url=strict_gateway_url)
        assert answer["data"]["authorizePayment"]["errors"] == [{"code": "NOT_FOUND"}]
    limited = await gql(query, url=strict_gateway_url)
    assert error_codes(limited) == ["RATE_LIMITED"]
    assert 1 <= limited["errors"][0]["extensions"]["retryAfter"] <= 60
    # placeOrder has a budget of its own.
    assert "errors" not in await gql(
        "mutation { placeOrder(input: {items: []}) { errors { code } } }", url=strict_gateway_url
    )


async def test_failed_logins_are_throttled_per_username(
    gql: Gql, strict_gateway_url: str, admin_credentials: tuple[str, str]
) -> None:
    login = (
        "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token errors { code } } }"
    )
    username, password = admin_credentials
    for _ in range(2):
        wrong = await gql(login, {"u": username, "p": "not the password"}, url=strict_gateway_url)
        assert wrong["data"]["login"]["errors"] == [{"code": "INVALID_CREDENTIALS"}]
    # Even the right password waits now: that is what stops guessing.
    throttled = await gql(login, {"u": username, "p": password}, url=strict_gateway_url)
    assert error_codes(throttled) == ["RATE_LIMITED"]
    assert throttled["errors"][0]["extensions"]["retryAfter"] >= 1
    # Another username from the same client is not throttled by this one's failures.
    other = await gql(login, {"u": "someone-else", "p": "x"}, url=strict_gateway_url)
    assert other["data"]["login"]["errors"] == [{"code": "INVALID_CREDENTIALS"}]


@pytest.fixture
def five_guesses_gateway_url(gateway_settings: GatewaySettings) -> Iterator[str]:
    """Five sign-in attempts a minute per username and address; nothing else in the way."""
    settings = gateway_settings.model_copy(
        update={
            "rate_limit_login": "1000/minute",
            "login_failures_per_username": "5/minute",
            "login_failures_per_client": "1000/minute",
        }
    )
    with LiveServer(create_app(settings)) as server:
        yield server.url


def verifications() -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("lockstock_gateway_password_verifications_total") or 0.0


SIGN_IN = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token errors { code } } }"


async def test_fifty_concurrent_wrong_guesses_for_one_username_cost_five_verifications(
    five_guesses_gateway_url: str, admin_credentials: tuple[str, str]
) -> None:
    """The throttle counts each attempt before argon2 sees it, so the limit holds under concurrency too."""
    username, _ = admin_credentials
    before = verifications()
    async with httpx.AsyncClient(base_url=five_guesses_gateway_url, timeout=120) as http:
        answers = await asyncio.gather(
            *(
                http.post(
                    "/graphql", json={"query": SIGN_IN, "variables": {"u": username, "p": f"guess-{n}"}}
                )
                for n in range(50)
            )
        )
    codes = [error_codes(answer.json()) for answer in answers]
    assert codes.count(["RATE_LIMITED"]) == 45, codes
    assert verifications() - before == 5


async def test_a_flood_of_guesses_for_the_admin_does_not_lock_the_admin_out_from_elsewhere(
    five_guesses_gateway_url: str, admin_credentials: tuple[str, str], service_tokens: dict[str, str]
) -> None:
    """Attempts count per username *and* address: the flood holds its own address, not the admin's."""
    username, password = admin_credentials

    async def sign_in(address: str, attempt_password: str) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=five_guesses_gateway_url, timeout=60) as http:
            # Through the admin UI, which forwards each person's address (with its credential).
            response = await http.post(
                "/graphql",
                json={"query": SIGN_IN, "variables": {"u": username, "p": attempt_password}},
                headers={"X-Lockstock-Caller": service_tokens["admin"], "X-Forwarded-For": address},
            )
        body: dict[str, Any] = response.json()
        return body

    flood = [await sign_in("203.0.113.66", f"guess-{n}") for n in range(8)]
    assert [error_codes(answer) for answer in flood].count(["RATE_LIMITED"]) == 3
    assert error_codes(await sign_in("203.0.113.66", password)) == ["RATE_LIMITED"]  # held where it floods

    admin = await sign_in("198.51.100.7", password)
    assert admin["data"]["login"]["token"], admin
    # A right password starts its address's count again: four wrong and one right, over and over, never wait.
    for _ in range(2):
        for n in range(4):
            assert error_codes(await sign_in("198.51.100.7", f"typo-{n}")) == []
        assert (await sign_in("198.51.100.7", password))["data"]["login"]["token"]


async def test_login_is_rate_limited_per_client(gql: Gql, strict_gateway_url: str) -> None:
    login = 'mutation { login(username: "nobody", password: "x") { token } }'
    codes = [error_codes(await gql(login, url=strict_gateway_url)) for _ in range(8)]
    assert ["RATE_LIMITED"] in codes


@pytest.fixture
def sign_in_limited_gateway_url(gateway_settings: GatewaySettings) -> Iterator[str]:
    """Ten sign-ins a minute per client, and no per-username throttle in the way (each try is a new name)."""
    limited = gateway_settings.model_copy(
        update={"rate_limit_login": "10/minute", "login_failures_per_client": "10/minute"}
    )
    with LiveServer(create_app(limited)) as server:
        yield server.url


LOGIN = 'mutation($u: String!) { login(username: $u, password: "wrong-password") { token errors { code } } }'


async def thirty_wrong_sign_ins(
    http: httpx.AsyncClient, url: str, headers: dict[str, str]
) -> list[list[str]]:
    """Thirty wrong sign-ins from this one client, each claiming another address in X-Forwarded-For."""
    codes = []
    for n in range(30):
        response = await http.post(
            f"{url}/graphql",
            json={"query": LOGIN, "variables": {"u": f"nobody-{uuid.uuid4().hex[:8]}"}},
            headers={**headers, "X-Forwarded-For": f"198.51.100.{n + 1}"},
        )
        codes.append(error_codes(response.json()))
    return codes


@pytest.mark.parametrize(
    "claim",
    ["no credential", "made-up credential", "orders' credential", "web's credential in Authorization"],
)
async def test_thirty_wrong_sign_ins_with_thirty_forwarded_addresses_meet_the_limit(
    sign_in_limited_gateway_url: str, http: httpx.AsyncClient, service_tokens: dict[str, str], claim: str
) -> None:
    """X-Forwarded-For counts only from the web shop or the admin, proven by their credential: from anyone
    else (under `task up`, any local program is 127.0.0.1, which uvicorn itself would have believed) the
    thirty addresses are one client, held to ten."""
    headers = {
        "no credential": {},
        "made-up credential": {"X-Lockstock-Caller": "not-a-credential"},
        "orders' credential": {"X-Lockstock-Caller": service_tokens["orders"]},
        "web's credential in Authorization": {"Authorization": f"Bearer {service_tokens['web']}"},
    }[claim]
    codes = await thirty_wrong_sign_ins(http, sign_in_limited_gateway_url, headers)
    assert codes.count(["RATE_LIMITED"]) == 20, codes


@pytest.mark.parametrize("ui", ["web", "admin"])
async def test_the_web_shop_and_the_admin_forward_their_callers_addresses(
    sign_in_limited_gateway_url: str, http: httpx.AsyncClient, service_tokens: dict[str, str], ui: str
) -> None:
    """Positive control: with the UI's credential the same thirty sign-ins are thirty clients, none held."""
    headers = {"X-Lockstock-Caller": service_tokens[ui]}
    codes = await thirty_wrong_sign_ins(http, sign_in_limited_gateway_url, headers)
    assert all(code != ["RATE_LIMITED"] for code in codes), codes
