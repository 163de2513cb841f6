"""A page whose data is behind a service that is down says so: 503 with the gateway's Retry-After and a page a
person can act on, not a 500 (and not the rate-limit page)."""

from typing import Any

from devstack.embedded import free_port
from devstack.testing import LiveServer
from gateway.app import create_app as create_gateway_app
from gateway.settings import GatewaySettings


def test_orders_down_is_a_503_page_with_the_gateway_s_retry_after(
    gateway_settings: GatewaySettings, signed_in_admin: Any
) -> None:
    # A gateway whose orders service is not there: nothing listens on that port.
    orders_down = gateway_settings.model_copy(update={"orders_url": f"http://127.0.0.1:{free_port()}"})
    with (
        LiveServer(create_gateway_app(orders_down)) as gateway,
        signed_in_admin(f"{gateway.url}/graphql", "orders-down-admin") as client,
    ):
        refused = client.get("/orders")

        assert refused.status_code == 503
        # The gateway's own retryAfter for an unreachable upstream (1 s), not the admin's fallback (5 s).
        assert refused.headers["retry-after"] == "1"
        assert "not answering" in refused.text
        assert "Traceback" not in refused.text
