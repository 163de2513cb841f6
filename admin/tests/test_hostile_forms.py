"""The admin's forms as a hostile client posts them, over real HTTP against the live system: a 4xx page (a
message next to the field where there is one), never a 500, and nothing changed by a refusal."""

import html
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings

from devstack.hostile import hostile_forms
from devstack.testing import csrf_token, query_row
from servicekit.sync import run_sync

SNAPSHOT = (
    "SELECT count(*), coalesce(sum(stock_qty), 0), coalesce(sum(price_cents), 0),"
    " coalesce(sum(low_stock_threshold), 0), count(low_stock_threshold) FROM inventory.products"
)


@pytest.fixture(scope="module")
def admin(gateway_url: str, signed_in_admin: Any) -> Iterator[httpx.Client]:
    """An httpx client signed in to an admin of its own over the suite's gateway (conftest's fixture)."""
    with signed_in_admin(f"{gateway_url}/graphql", "hostile-admin") as client:
        yield client


@pytest.fixture(scope="module")
def product_id(migrated_admin_url: str) -> int:
    async def insert() -> int:
        import asyncpg

        from servicekit.db import plain_url

        conn = await asyncpg.connect(plain_url(migrated_admin_url))
        try:
            value: int = await conn.fetchval(
                "INSERT INTO inventory.products (name, price_cents, stock_qty) VALUES ('Hostile', 1000, 50)"
                " RETURNING id"
            )
            return value
        finally:
            await conn.close()

    return run_sync(insert())


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("1e999999", "Enter a price like 12.50."),
        ("1e-999999999", "Enter a price like 12.50."),
        ("١٢", "Enter a price like 12.50."),
        ("100000000.01", "The price can be at most 100,000,000.00."),
        ("-0.01", "The price cannot be negative."),
        ("1.005", "Use at most two decimal places."),
    ],
)
def test_a_price_the_shop_cannot_take_gets_the_message_next_to_the_field(
    admin: httpx.Client, product_id: int, migrated_admin_url: str, typed: str, message: str
) -> None:
    before = query_row(migrated_admin_url, SNAPSHOT)
    token = csrf_token(admin.get(f"/products/{product_id}").text)
    response = admin.post(
        f"/products/{product_id}", data={"csrf_token": token, "name": "Hostile", "price": typed}
    )
    assert response.status_code == 422, response.text[:500]
    assert f'<p class="error" id="price-error">{html.escape(message)}</p>' in response.text
    assert query_row(migrated_admin_url, SNAPSHOT) == before


def test_a_body_over_the_cap_is_refused_unread(admin: httpx.Client, product_id: int) -> None:
    token = csrf_token(admin.get(f"/products/{product_id}").text)
    big = {"csrf_token": token, "name": "x" * 20_000, "price": "1"}
    assert admin.post(f"/products/{product_id}", data=big).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        yield b"csrf_token=" + token.encode() + b"&name="
        for _ in range(40):
            yield b"x" * 1_000

    streamed = admin.post(
        f"/products/{product_id}",
        content=chunks(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert streamed.status_code == 413
    assert "larger than the admin accepts" in streamed.text


def test_multipart_without_a_boundary_is_a_400_page(admin: httpx.Client, product_id: int) -> None:
    response = admin.post(
        f"/products/{product_id}", content=b"csrf_token=x", headers={"content-type": "multipart/form-data"}
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize("form", ["edit", "stock", "new"])
def test_hostile_admin_forms_get_a_4xx_page_and_change_nothing(
    admin: httpx.Client, product_id: int, migrated_admin_url: str, form: str
) -> None:
    path, valid = {
        "edit": (f"/products/{product_id}", {"name": "Hostile", "price": "10.00", "threshold": "5"}),
        "stock": (f"/products/{product_id}/stock", {"mode": "add", "quantity": "0"}),
        "new": ("/products/new", {"name": "Hostile new", "price": "1.00", "stock": "1"}),
    }[form]
    token = csrf_token(admin.get(f"/products/{product_id}").text)

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(request=hostile_forms({"csrf_token": token, **valid}, keep=frozenset({"csrf_token"})))
    def run(request: tuple[str, bytes]) -> None:
        content_type, body = request
        before = query_row(migrated_admin_url, SNAPSHOT)
        response = admin.post(path, content=body, headers={"content-type": content_type})
        assert response.status_code < 500 or response.status_code == 503, response.text[:500]
        assert "Traceback" not in response.text
        if response.status_code != 303:  # a redirect is a form that was valid after all
            assert 400 <= response.status_code < 500, response.text[:300]
            assert response.headers["content-type"].startswith("text/html")
            assert query_row(migrated_admin_url, SNAPSHOT) == before

    run()


ENDPOINTS = "SELECT count(*) FROM notifications.webhook_endpoints"


def test_a_hostile_webhook_form_gets_a_4xx_page_and_registers_nothing(
    admin: httpx.Client, migrated_admin_url: str
) -> None:
    # A form the admin accepts and the worker refuses (a URL with credentials): whatever a hostile client
    # does to it, nothing is registered.
    valid = {"url": "https://user:pw@example.com/hook", "event_types": "order.paid", "description": "x"}
    token = csrf_token(admin.get("/webhooks").text)

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(request=hostile_forms({"csrf_token": token, **valid}, keep=frozenset({"csrf_token"})))
    def run(request: tuple[str, bytes]) -> None:
        content_type, body = request
        before = query_row(migrated_admin_url, ENDPOINTS)
        response = admin.post("/webhooks", content=body, headers={"content-type": content_type})
        assert 400 <= response.status_code < 500, response.text[:500]
        assert response.headers["content-type"].startswith("text/html")
        assert "Traceback" not in response.text
        assert query_row(migrated_admin_url, ENDPOINTS) == before

    run()


@pytest.mark.parametrize(
    "path",
    ["/mail/0", "/mail/nope", "/mail/99999999999999", "/webhooks/nope", "/webhooks/99999999999999"],
)
def test_a_mail_or_webhook_page_that_does_not_exist_is_a_404_page(admin: httpx.Client, path: str) -> None:
    response = admin.get(path)
    assert response.status_code == 404, response.text[:300]
    assert "not found" in response.text


def test_a_redeliver_or_delete_of_nothing_is_a_404_page(admin: httpx.Client) -> None:
    token = csrf_token(admin.get("/webhooks").text)
    for path in (
        "/webhooks/99999999999999/delete",
        "/webhooks/1/deliveries/99999999999999/redeliver",
        "/webhooks/x/deliveries/y/redeliver",
    ):
        response = admin.post(path, data={"csrf_token": token})
        assert response.status_code == 404, (path, response.text[:300])
    assert admin.post("/webhooks/1/delete", data={"csrf_token": "forged"}).status_code == 403


KEYS = "SELECT count(*), count(revoked_at) FROM auth.api_keys"
PASSWORDS = "SELECT string_agg(password_hash, ',' ORDER BY id) FROM auth.accounts"


@pytest.mark.parametrize(
    ("path", "valid", "snapshot"),
    [
        # Forms the admin or the gateway refuses (an unknown scope, a wrong current password): whatever a
        # hostile client does to them, no key is made and no password changes.
        ("/api-keys", {"name": "hostile", "scopes": "NOT_A_SCOPE"}, KEYS),
        ("/account/password", {"current": "not it", "new": "x" * 12, "again": "x" * 12}, PASSWORDS),
        ("/accounts/disabled", {"username": "nobody-hostile", "disabled": "true"}, PASSWORDS),
    ],
)
def test_hostile_access_forms_get_a_4xx_page_and_change_nothing(
    admin: httpx.Client, migrated_admin_url: str, path: str, valid: dict[str, str], snapshot: str
) -> None:
    token = csrf_token(admin.get("/api-keys").text)

    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(request=hostile_forms({"csrf_token": token, **valid}, keep=frozenset({"csrf_token"})))
    def run(request: tuple[str, bytes]) -> None:
        content_type, body = request
        before = query_row(migrated_admin_url, snapshot)
        response = admin.post(path, content=body, headers={"content-type": content_type})
        assert response.status_code < 500, response.text[:500]
        assert "Traceback" not in response.text
        if response.status_code != 303:  # a refusal flashed on the page it redirects to
            assert 400 <= response.status_code < 500, response.text[:300]
            assert response.headers["content-type"].startswith("text/html")
        assert query_row(migrated_admin_url, snapshot) == before

    run()


def test_revoking_a_key_that_does_not_exist_is_a_404_page(admin: httpx.Client) -> None:
    token = csrf_token(admin.get("/api-keys").text)
    for path in ("/api-keys/99999999999999/revoke", "/api-keys/nope/revoke"):
        response = admin.post(path, data={"csrf_token": token})
        assert response.status_code == 404, (path, response.text[:300])
    assert admin.post("/api-keys/1/revoke", data={"csrf_token": "forged"}).status_code == 403
