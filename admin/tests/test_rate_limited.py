"""A page the gateway rate-limits says so (429 with Retry-After and a page a person can act on), not a 500."""

from typing import Any

from devstack.testing import LiveServer
from gateway.app import create_app as create_gateway_app
from gateway.settings import GatewaySettings


def test_a_rate_limited_page_is_a_429_page_with_retry_after(
    gateway_settings: GatewaySettings, signed_in_admin: Any
) -> None:
    strict = gateway_settings.model_copy(update={"rate_limit_operation": "4/minute"})
    with (
        LiveServer(create_gateway_app(strict)) as gateway,
        signed_in_admin(f"{gateway.url}/graphql", "rate-limited-admin") as client,
    ):
        statuses = [client.get("/orders").status_code for _ in range(5)]
        assert statuses[0] == 200
        assert statuses[-1] == 429, statuses
        refused = client.get("/orders")
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        assert "Too many requests" in refused.text
        assert "Traceback" not in refused.text
