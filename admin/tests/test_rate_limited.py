"""A page the gateway rate-limits says so (429 with Retry-After and a page a person can act on), not a 500."""

import html
import re
from collections.abc import Callable
from typing import Any

import httpx

from admin.app import create_app
from admin.settings import AdminSettings
from devstack.testing import LiveServer
from gateway.app import create_app as create_gateway_app
from gateway.settings import GatewaySettings

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def test_a_rate_limited_page_is_a_429_page_with_retry_after(
    gateway_settings: GatewaySettings,
    admin_credentials: tuple[str, str],
    credential_settings: Callable[[str], dict[str, Any]],
) -> None:
    strict = gateway_settings.model_copy(update={"rate_limit_operation": "4/minute"})
    with LiveServer(create_gateway_app(strict)) as gateway:
        settings = AdminSettings(
            gateway_url=f"{gateway.url}/graphql",
            secret_key="rate-limited-admin",
            cookie_secure=False,
            **credential_settings("admin"),
        )
        with (
            LiveServer(create_app(settings)) as admin,
            httpx.Client(base_url=admin.url, timeout=30) as client,
        ):
            found = _CSRF.search(client.get("/sign-in").text)
            assert found
            username, password = admin_credentials
            form = {"csrf_token": html.unescape(found.group(1)), "username": username, "password": password}
            assert client.post("/sign-in", data={**form, "next": "/orders"}).status_code == 303
            statuses = [client.get("/orders").status_code for _ in range(5)]
            assert statuses[0] == 200
            assert statuses[-1] == 429, statuses
            refused = client.get("/orders")
            assert refused.status_code == 429
            assert int(refused.headers["retry-after"]) >= 1
            assert "Too many requests" in refused.text
            assert "Traceback" not in refused.text
