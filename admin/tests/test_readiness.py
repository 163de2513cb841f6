import httpx

from admin.app import create_app
from admin.settings import AdminSettings
from devstack.embedded import free_port
from devstack.testing import LiveServer


def test_the_admin_is_ready_when_the_gateway_answers(admin_ui_url):
    response = httpx.get(f"{admin_ui_url}/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"gateway": True}}


def test_the_admin_is_not_ready_without_its_gateway():
    settings = AdminSettings(
        gateway_url=f"http://127.0.0.1:{free_port()}/graphql", secret_key="readiness-test"
    )
    with LiveServer(create_app(settings)) as server:
        response = httpx.get(f"{server.url}/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"gateway": False}
