"""Every answer of the admin carries the security headers: pages, redirects (POST-redirect-GET, to sign-in),
the error pages middleware answers itself (413) and the refused form; only the static files are cacheable."""

from collections.abc import Iterator

import httpx
import pytest

from admin.app import create_app
from admin.settings import AdminSettings
from devstack.embedded import free_port
from devstack.testing import LiveServer

EXPECTED = {
    "cache-control": "no-store",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "content-security-policy": "default-src 'self'; form-action 'self'; frame-ancestors 'none'",
}


@pytest.fixture(scope="module")
def admin() -> Iterator[httpx.Client]:
    settings = AdminSettings(
        gateway_url=f"http://127.0.0.1:{free_port()}/graphql", secret_key="headers-test", cookie_secure=False
    )
    with LiveServer(create_app(settings)) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def assert_headers(response: httpx.Response) -> None:
    assert {name: response.headers.get(name) for name in EXPECTED} == EXPECTED, response.status_code


def test_a_redirect_carries_the_security_headers(admin: httpx.Client) -> None:
    home = admin.get("/")
    assert home.status_code == 303
    assert_headers(home)
    to_sign_in = admin.get("/products")  # no session: to the sign-in page
    assert to_sign_in.status_code == 303
    assert to_sign_in.headers["location"].startswith("/sign-in?next=")
    assert_headers(to_sign_in)


def test_pages_and_error_pages_carry_them(admin: httpx.Client) -> None:
    sign_in = admin.get("/sign-in")
    assert sign_in.status_code == 200
    assert_headers(sign_in)
    assert_headers(admin.get("/no-such-page"))  # 404
    refused = admin.post("/sign-in", data={"username": "a", "password": "b"})  # no CSRF token
    assert refused.status_code == 403
    assert_headers(refused)
    too_large = admin.post("/sign-in", data={"username": "x" * 20_000})
    assert too_large.status_code == 413
    assert_headers(too_large)


def test_static_files_may_be_cached(admin: httpx.Client) -> None:
    response = admin.get("/static/admin.css")
    assert response.status_code == 200
    assert "cache-control" not in response.headers
    assert response.headers["x-content-type-options"] == "nosniff"
