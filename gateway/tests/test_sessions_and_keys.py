"""Revocable sign-ins and API keys (issue 11, ADR 0010), over real HTTP and the real auth schema.

Each test signs in accounts of its own: the suite's shared admin token must outlive every one of them."""

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest

from devstack.testing import LiveServer
from gateway.app import create_app
from gateway.auth import create_account
from gateway.settings import GatewaySettings
from servicekit.db import create_engine

from .conftest import Gql, error_codes

LOGIN = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token errors { code } } }"
ORDERS = "{ orders(first: 1) { nodes { id } } }"
SIGN_OUT = "mutation($e: Boolean!) { signOut(everywhere: $e) { errors { code } } }"
CHANGE = (
    "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) "
    "{ token errors { code field message } } }"
)
DISABLE = (
    "mutation($u: String!, $d: Boolean!) { setAccountDisabled(username: $u, disabled: $d) "
    "{ account { username disabledAt } errors { code field message } } }"
)
CREATE_KEY = (
    "mutation($n: String!, $s: [Scope!]!) { createApiKey(name: $n, scopes: $s) "
    "{ key apiKey { id prefix scopes } errors { code field } } }"
)
REVOKE_KEY = "mutation($id: ID!) { revokeApiKey(id: $id) { apiKey { revokedAt } errors { code } } }"
CREATE_PRODUCT = (
    'mutation { createProduct(input: {name: "key-made", priceCents: 100, stockQty: 1}) '
    "{ product { id } errors { code } } }"
)

Account = Callable[..., Awaitable[tuple[str, str]]]


@pytest.fixture
async def account(gateway_settings: GatewaySettings) -> AsyncIterator[Account]:
    """``await account(role)`` → (username, password) of a new account."""
    engine = create_engine(gateway_settings)

    async def make(role: str = "admin") -> tuple[str, str]:
        username, password = f"{role}-{secrets.token_hex(4)}", secrets.token_urlsafe(18)
        await create_account(engine, username, password, role)  # type: ignore[arg-type]
        return username, password

    try:
        yield make
    finally:
        await engine.dispose()


async def sign_in(gql: Gql, username: str, password: str) -> str:
    login = (await gql(LOGIN, {"u": username, "p": password}))["data"]["login"]
    assert login["token"], login
    token: str = login["token"]
    return token


async def signed_in(gql: Gql, token: str) -> bool:
    body = await gql(ORDERS, token=token)
    if "errors" in body:
        assert error_codes(body) == ["UNAUTHENTICATED"], body
        return False
    return True


async def test_signing_out_ends_this_token_at_once_and_everywhere_ends_all(
    gql: Gql, account: Account
) -> None:
    username, password = await account()
    first, second, third = [await sign_in(gql, username, password) for _ in range(3)]
    assert await signed_in(gql, first)

    assert (await gql(SIGN_OUT, {"e": False}, token=first))["data"]["signOut"]["errors"] == []
    assert not await signed_in(gql, first)  # within its expiry, and refused
    assert await signed_in(gql, second)
    assert await signed_in(gql, third)

    await gql(SIGN_OUT, {"e": True}, token=second)
    assert not await signed_in(gql, second)
    assert not await signed_in(gql, third)
    # Signing out twice is no error worth a 500: the token is simply not signed in.
    assert error_codes(await gql(SIGN_OUT, {"e": False}, token=first)) == ["UNAUTHENTICATED"]
    assert await signed_in(gql, await sign_in(gql, username, password))  # and one can sign in again


async def test_changing_the_password_ends_every_session_and_answers_a_new_token(
    gql: Gql, account: Account, db: asyncpg.Connection
) -> None:
    username, password = await account()
    mine, elsewhere = await sign_in(gql, username, password), await sign_in(gql, username, password)
    stored = await db.fetchval("SELECT password_hash FROM auth.accounts WHERE username = $1", username)

    wrong = (await gql(CHANGE, {"c": "not the password", "n": "a brand new password"}, token=mine))["data"]
    assert [(e["code"], e["field"]) for e in wrong["changePassword"]["errors"]] == [
        ("INVALID_CREDENTIALS", "currentPassword")
    ]
    short = (await gql(CHANGE, {"c": password, "n": "short"}, token=mine))["data"]["changePassword"]
    assert [(e["code"], e["field"]) for e in short["errors"]] == [("INVALID_INPUT", "newPassword")]
    assert (
        await db.fetchval("SELECT password_hash FROM auth.accounts WHERE username = $1", username) == stored
    )
    assert await signed_in(gql, mine)
    assert await signed_in(gql, elsewhere)

    new_password = "a brand new password"
    changed = (await gql(CHANGE, {"c": password, "n": new_password}, token=mine))["data"]["changePassword"]
    assert changed["errors"] == []
    assert changed["token"]
    assert not await signed_in(gql, mine)
    assert not await signed_in(gql, elsewhere)
    assert await signed_in(gql, changed["token"])
    assert (await gql(LOGIN, {"u": username, "p": password}))["data"]["login"]["token"] is None
    assert await signed_in(gql, await sign_in(gql, username, new_password))


async def test_disabling_an_account_ends_its_tokens_and_its_sign_ins(gql: Gql, account: Account) -> None:
    admin = await sign_in(gql, *await account())
    staff_name, staff_password = await account("staff")
    staff = await sign_in(gql, staff_name, staff_password)
    # Staff are signed in (FORBIDDEN, not UNAUTHENTICATED, for an admin's field) until disabled.
    assert error_codes(await gql("{ accounts { username } }", token=staff)) == ["FORBIDDEN"]

    done = (await gql(DISABLE, {"u": staff_name, "d": True}, token=admin))["data"]["setAccountDisabled"]
    assert done["errors"] == []
    assert done["account"]["disabledAt"]
    assert error_codes(await gql("{ accounts { username } }", token=staff)) == ["UNAUTHENTICATED"]
    assert (await gql(LOGIN, {"u": staff_name, "p": staff_password}))["data"]["login"]["token"] is None

    # The staff account cannot undo it, nor can anyone but an admin.
    assert error_codes(await gql(DISABLE, {"u": staff_name, "d": False}, token=staff)) == ["UNAUTHENTICATED"]
    enabled = (await gql(DISABLE, {"u": staff_name, "d": False}, token=admin))["data"]["setAccountDisabled"]
    assert enabled["account"]["disabledAt"] is None
    assert await sign_in(gql, staff_name, staff_password)


async def test_an_admin_cannot_disable_themselves_or_a_missing_account(gql: Gql, account: Account) -> None:
    username, password = await account()
    token = await sign_in(gql, username, password)
    own = (await gql(DISABLE, {"u": username, "d": True}, token=token))["data"]["setAccountDisabled"]
    assert [e["code"] for e in own["errors"]] == ["INVALID_INPUT"]
    missing = (await gql(DISABLE, {"u": "nobody-" + username, "d": True}, token=token))["data"]
    assert [e["code"] for e in missing["setAccountDisabled"]["errors"]] == ["NOT_FOUND"]
    assert await signed_in(gql, token)


async def test_staff_cannot_manage_accounts_or_keys(gql: Gql, account: Account) -> None:
    staff = await sign_in(gql, *await account("staff"))
    for query, variables in (
        ("{ accounts { username } }", {}),
        ("{ apiKeys { id } }", {}),
        (CREATE_KEY, {"n": "mine", "s": ["ORDERS_READ"]}),
        (DISABLE, {"u": "anyone", "d": True}),
    ):
        assert error_codes(await gql(query, variables, token=staff)) == ["FORBIDDEN"], query


async def test_an_api_key_is_shown_once_stored_as_a_hash_and_does_only_its_scopes(
    gql: Gql, account: Account, db: asyncpg.Connection, server_logs
) -> None:
    admin = await sign_in(gql, *await account())
    created = (await gql(CREATE_KEY, {"n": "warehouse sync", "s": ["ORDERS_READ"]}, token=admin))["data"]
    made = created["createApiKey"]
    key, key_id = made["key"], made["apiKey"]["id"]
    assert key.startswith(made["apiKey"]["prefix"] + "_")
    assert made["apiKey"]["scopes"] == ["ORDERS_READ"]

    secret = key.split("_", 2)[2]  # lsk_<prefix>_<secret>; the secret itself may contain "_"
    assert len(secret) == 43
    row = await db.fetchrow("SELECT * FROM auth.api_keys WHERE id = $1", int(key_id))
    assert all(secret not in str(value) for value in dict(row).values())
    listed = (await gql("{ apiKeys { id name prefix lastUsedAt revokedAt } }", token=admin))["data"][
        "apiKeys"
    ]
    mine = next(k for k in listed if k["id"] == key_id)
    assert mine["name"] == "warehouse sync"
    assert mine["lastUsedAt"] is None
    assert "key" not in mine

    assert "errors" not in await gql(ORDERS, token=key)  # its scope
    assert "errors" not in await gql('{ order(id: "1") { id } }', token=key)
    refused = await gql(CREATE_PRODUCT, token=key)
    assert error_codes(refused) == ["FORBIDDEN"]
    assert "catalog:write" in refused["errors"][0]["message"]
    for query, variables in (
        ("{ apiKeys { id } }", {}),
        (CREATE_KEY, {"n": "wider", "s": ["CATALOG_WRITE"]}),  # a key cannot mint a wider key
        (SIGN_OUT, {"e": False}),
    ):
        assert error_codes(await gql(query, variables, token=key)) == ["FORBIDDEN"], query
    assert await db.fetchval("SELECT last_used_at IS NOT NULL FROM auth.api_keys WHERE id = $1", int(key_id))
    used = [e for e in server_logs.events() if e.get("event") == "api_key_used"]
    assert used
    assert {e["api_key_id"] for e in used} == {int(key_id)}
    assert secret not in server_logs.text

    revoked = (await gql(REVOKE_KEY, {"id": key_id}, token=admin))["data"]["revokeApiKey"]
    assert revoked["errors"] == []
    assert revoked["apiKey"]["revokedAt"]
    assert error_codes(await gql(ORDERS, token=key)) == ["UNAUTHENTICATED"]
    for mistyped in (key[:-1] + ("A" if key[-1] != "A" else "B"), key[:-1], "lsk_nothing"):
        assert error_codes(await gql(ORDERS, token=mistyped)) == ["UNAUTHENTICATED"]


async def test_a_catalog_key_writes_the_catalog_and_reads_no_orders(gql: Gql, account: Account) -> None:
    admin = await sign_in(gql, *await account())
    made = (await gql(CREATE_KEY, {"n": "catalog feed", "s": ["CATALOG_WRITE"]}, token=admin))["data"]
    key = made["createApiKey"]["key"]
    placed = (await gql(CREATE_PRODUCT, token=key))["data"]["createProduct"]
    assert placed["errors"] == []
    assert placed["product"]["id"]
    assert error_codes(await gql(ORDERS, token=key)) == ["FORBIDDEN"]
    # Without orders:read an order reads as it does for a shopper without the order's token: null.
    assert await gql('{ order(id: "1") { id } }', token=key) == {"data": {"order": None}}


async def test_create_api_key_refuses_a_bad_name_and_no_scopes(gql: Gql, account: Account) -> None:
    admin = await sign_in(gql, *await account())
    for variables, field in (({"n": " ", "s": ["ORDERS_READ"]}, "name"), ({"n": "x" * 101, "s": []}, "name")):
        payload = (await gql(CREATE_KEY, variables, token=admin))["data"]["createApiKey"]
        assert payload["key"] is None
        assert payload["errors"][0]["field"] == field
    payload = (await gql(CREATE_KEY, {"n": "ok", "s": []}, token=admin))["data"]["createApiKey"]
    assert [e["field"] for e in payload["errors"]] == ["scopes"]
    assert error_codes(await gql(CREATE_KEY, {"n": "ok", "s": ["NOT_A_SCOPE"]}, token=admin)) == [
        "BAD_REQUEST"
    ]


async def test_each_api_key_has_its_own_operation_budget(
    gateway_settings: GatewaySettings, gql: Gql, account: Account
) -> None:
    """Two keys used from one address: each has the per-client budget to itself, and a key's budget is not
    the address's (an integration does not use up the shoppers' NAT address, nor they its)."""
    admin = await sign_in(gql, *await account())
    keys = [
        (await gql(CREATE_KEY, {"n": f"k{i}", "s": ["ORDERS_READ"]}, token=admin))["data"]["createApiKey"][
            "key"
        ]
        for i in range(2)
    ]
    limited = gateway_settings.model_copy(update={"rate_limit_operation": "3/minute"})
    with LiveServer(create_app(limited)) as server:
        first = [error_codes(await gql(ORDERS, token=keys[0], url=server.url)) for _ in range(4)]
        assert first == [[], [], [], ["RATE_LIMITED"]]
        assert error_codes(await gql(ORDERS, token=keys[1], url=server.url)) == []
        assert error_codes(await gql("{ products(first: 1) { nodes { id } } }", url=server.url)) == []


async def test_a_username_no_account_can_have_is_simply_wrong(gql: Gql, account: Account) -> None:
    """A NUL byte or a control character is refused by PostgreSQL itself: asked, it was an INTERNAL."""
    admin = await sign_in(gql, *await account())
    for name in ("\x00", "ad\x00min", "line\nbreak"):
        login = (await gql(LOGIN, {"u": name, "p": "whatever it is"}))["data"]["login"]
        assert login == {"token": None, "errors": [{"code": "INVALID_CREDENTIALS"}]}
        disabled = (await gql(DISABLE, {"u": name, "d": True}, token=admin))["data"]["setAccountDisabled"]
        assert [e["code"] for e in disabled["errors"]] == ["NOT_FOUND"]
