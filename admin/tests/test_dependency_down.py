"""A page whose data is behind a service that is down says so: 503 with the gateway's Retry-After and a page a
person can act on, not a 500 (and not the rate-limit page)."""

import html
import re
from collections.abc import Callable
from typing import Any

import httpx

from admin.app import create_app
from admin.settings import AdminSettings
from devstack.embedded import free_port
from devstack.testing import LiveServer
from gateway.app import create_app as create_gateway_app
from gateway.settings import GatewaySettings

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def test_orders_down_is_a_503_page_with_the_gateway_s_retry_after(
    gateway_settings: GatewaySettings,
    admin_credentials: tuple[str, str],
    credential_settings: Callable[[str], dict[str, Any]],
) -> None:
    # A gateway whose orders service is not there: nothing listens on that port.
    orders_down = gateway_settings.model_copy(update={"orders_url": f"http://127.0.0.1:{free_port()}"})
    with LiveServer(create_gateway_app(orders_down)) as gateway:
        settings = AdminSettings(
            gateway_url=f"{gateway.url}/graphql",
            secret_key="orders-down-admin",
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

            refused = client.get("/orders")

            assert refused.status_code == 503
            # The gateway's own retryAfter for an unreachable upstream (1 s), not the admin's fallback (5 s).
            assert refused.headers["retry-after"] == "1"
            assert "not answering" in refused.text
            assert "Traceback" not in refused.text
