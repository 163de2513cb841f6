"""Who may use the back office, in Chromium against the live gateway: your password, signing out, accounts,
API keys. Every change is checked where it matters, at the gateway: the token it ended is refused there.

Each test signs in accounts of its own (the suite's shared admin must keep its password and sessions)."""

import base64
import json
import secrets
from pathlib import Path
from typing import Any

import httpx
import itsdangerous
import pytest

from devstack.testing import screenshot_dir
from gateway.auth import create_account
from gateway.settings import GatewaySettings
from servicekit.db import create_engine
from servicekit.sync import run_sync

SCREENSHOTS = screenshot_dir(Path(__file__).resolve().parents[2])
LOGIN = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }"


@pytest.fixture(autouse=True)
def _system_up_before_the_browser(admin_ui_url: str, gateway_url: str) -> None:
    """Start the live system before the first browser page, so a test's time is its own."""


def new_account(settings: GatewaySettings, role: str = "admin") -> tuple[str, str]:
    username, password = f"{role}-{secrets.token_hex(4)}", secrets.token_urlsafe(18)

    async def create() -> None:
        engine = create_engine(settings)
        try:
            await create_account(engine, username, password, role)  # type: ignore[arg-type]
        finally:
            await engine.dispose()

    run_sync(create())
    return username, password


def gql(gateway_url: str, query: str, token: str | None = None, **variables: Any) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.post(
        f"{gateway_url}/graphql", json={"query": query, "variables": variables}, headers=headers, timeout=30
    )
    assert response.status_code < 500, response.text
    body: dict[str, Any] = response.json()
    return body


def login(gateway_url: str, username: str, password: str) -> str | None:
    token: str | None = gql(gateway_url, LOGIN, u=username, p=password)["data"]["login"]["token"]
    return token


def refused(gateway_url: str, token: str) -> bool:
    """Whether the gateway refuses this credential (UNAUTHENTICATED on a field that needs a caller)."""
    body = gql(gateway_url, "{ orders(first: 1) { nodes { id } } }", token)
    return [e["extensions"]["code"] for e in body.get("errors", [])] == ["UNAUTHENTICATED"]


def sign_in(page: Any, admin_ui_url: str, username: str, password: str) -> None:
    page.goto(f"{admin_ui_url}/sign-in")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{admin_ui_url}/products")


def session_token(context: Any) -> str:
    """The gateway token inside the admin's session cookie (signed, not encrypted: base64 JSON)."""
    cookie = next(c for c in context.cookies() if c["name"] == "lockstock_admin")["value"]
    payload = itsdangerous.TimestampSigner("test-admin-secret").unsign(cookie)
    token: str = json.loads(base64.b64decode(payload))["token"]
    return token


def test_signing_out_ends_the_token_at_the_gateway(
    context: Any, admin_ui_url: str, gateway_url: str, gateway_settings: GatewaySettings
) -> None:
    username, password = new_account(gateway_settings)
    page = context.new_page()
    sign_in(page, admin_ui_url, username, password)
    token = session_token(context)
    assert not refused(gateway_url, token)

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{admin_ui_url}/sign-in")
    assert page.get_by_role("status").inner_text() == "You have signed out."
    # A copy of the cookie, or the token lifted from it, is worth nothing now.
    assert refused(gateway_url, token)


def test_an_admin_changes_their_password_and_every_other_session_ends(
    context: Any, admin_ui_url: str, gateway_url: str, gateway_settings: GatewaySettings
) -> None:
    username, password = new_account(gateway_settings)
    elsewhere = login(gateway_url, username, password)
    assert elsewhere
    page = context.new_page()
    sign_in(page, admin_ui_url, username, password)
    page.get_by_role("link", name=username).click()
    page.wait_for_url(f"{admin_ui_url}/account")

    page.get_by_label("Current password").fill("not my password")
    page.get_by_label("New password", exact=True).fill("a new password, long")
    page.get_by_label("New password, again").fill("a new password, long")
    page.get_by_role("button", name="Change password").click()
    assert page.locator("#current-error").inner_text() == "That is not your current password."
    assert not refused(gateway_url, elsewhere)  # nothing changed

    page.get_by_label("Current password").fill(password)
    page.get_by_label("New password", exact=True).fill("a new password, long")
    page.get_by_label("New password, again").fill("a different one, long")
    page.get_by_role("button", name="Change password").click()
    assert page.locator("#again-error").inner_text() == "The two new passwords differ."

    page.get_by_label("Current password").fill(password)
    page.get_by_label("New password", exact=True).fill("a new password, long")
    page.get_by_label("New password, again").fill("a new password, long")
    page.get_by_role("button", name="Change password").click()
    page.wait_for_url(f"{admin_ui_url}/account")
    assert "Password changed" in page.get_by_role("status").inner_text()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "admin-account.png"), full_page=True)

    assert refused(gateway_url, elsewhere)  # the other session ended at once
    page.goto(f"{admin_ui_url}/orders")  # this one goes on, on its new token
    assert page.url == f"{admin_ui_url}/orders"
    assert login(gateway_url, username, password) is None
    assert login(gateway_url, username, "a new password, long")


def test_an_api_key_is_shown_once_works_for_its_scope_and_revoking_ends_it(
    context: Any, admin_ui_url: str, gateway_url: str, gateway_settings: GatewaySettings
) -> None:
    page = context.new_page()
    sign_in(page, admin_ui_url, *new_account(gateway_settings))
    page.get_by_role("link", name="API keys").click()
    page.wait_for_url(f"{admin_ui_url}/api-keys")

    page.get_by_role("button", name="Create key").click()
    assert page.locator("#name-error").is_visible()
    assert page.locator("#scopes-error").inner_text() == "Choose at least one scope."

    name = f"warehouse sync {secrets.token_hex(3)}"
    page.get_by_label("Name").fill(name)
    page.get_by_label("orders:read").check()
    page.get_by_role("button", name="Create key").click()
    key = page.locator("#key-value").inner_text()
    assert key.startswith("lsk_")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "admin-api-keys.png"), full_page=True)

    body = gql(gateway_url, "{ orders(first: 1) { nodes { id } } }", key)
    assert "errors" not in body  # its scope
    product = gql(
        gateway_url,
        'mutation { createProduct(input: {name: "x", priceCents: 1, stockQty: 1}) { errors { code } } }',
        key,
    )
    assert [e["extensions"]["code"] for e in product["errors"]] == ["FORBIDDEN"]

    page.goto(f"{admin_ui_url}/api-keys")
    assert key not in page.content()  # shown once: the list has its prefix only
    row = page.locator("#keys tr", has_text=name)
    assert key.split("_")[1] in row.inner_text()
    assert row.locator("time").count() == 2  # created, and last used just now
    row.get_by_role("button", name=f"Revoke {name}").click()
    assert "revoked" in page.get_by_role("status").inner_text()
    assert refused(gateway_url, key)


def test_disabling_an_account_signs_it_out_everywhere_until_enabled(
    context: Any, admin_ui_url: str, gateway_url: str, gateway_settings: GatewaySettings
) -> None:
    staff, staff_password = new_account(gateway_settings, "staff")
    staff_token = login(gateway_url, staff, staff_password)
    assert staff_token
    page = context.new_page()
    sign_in(page, admin_ui_url, *new_account(gateway_settings))
    page.get_by_role("link", name="Accounts").click()
    page.wait_for_url(f"{admin_ui_url}/accounts")

    page.get_by_role("button", name=f"Disable {staff}").click()
    assert f"{staff} is disabled" in page.get_by_role("status").inner_text()
    assert "disabled" in page.locator("#accounts tr", has_text=staff).inner_text()
    assert login(gateway_url, staff, staff_password) is None
    body = gql(gateway_url, "{ accounts { username } }", staff_token)
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]

    page.get_by_role("button", name=f"Enable {staff}").click()
    assert f"{staff} can sign in again" in page.get_by_role("status").inner_text()
    assert login(gateway_url, staff, staff_password)
