"""The UI frame: health and readiness, the crash page, the order of the middleware."""

from pathlib import Path

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from fastapi.testclient import TestClient
from pydantic import SecretStr
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from servicekit.settings import KitSettings
from uikit.frame import create_ui_app, finish_ui_app
from uikit.pages import request_id


class DemoSettings(KitSettings):
    service_name: str = "demo-ui"
    gateway_url: str = "http://127.0.0.1:9/graphql"
    max_body_bytes: int = 1024
    service_token: SecretStr | None = None


class FakeGateway:
    ready_answer = True

    def __init__(self, http: httpx.AsyncClient, url: str) -> None:
        self.url = url

    async def ready(self) -> bool:
        return self.ready_answer


def _page(scope: Scope, status: int, message: str) -> Response:
    return HTMLResponse(
        f"<h1>Error {status}</h1><p>{message}</p><p>{request_id(scope)}</p>", status_code=status
    )


class Marker:
    """Records, in the scope, the order the app's own middleware ran in."""

    def __init__(self, app: ASGIApp, *, name: str) -> None:
        self.app = app
        self.name = name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope.setdefault("markers", []).append(self.name)
        await self.app(scope, receive, send)


def _app(tmp_path: Path) -> FastAPI:
    settings = DemoSettings()
    app = create_ui_app(
        settings,
        title="demo",
        gateway=FakeGateway,
        gateway_timeout=httpx.Timeout(1.0),
        gateway_limits=httpx.Limits(max_connections=1),
        static_dir=tmp_path,
    )

    @app.get("/crash")
    async def crash() -> Response:
        raise RuntimeError("boom")

    @app.post("/markers")
    async def markers(request: Request) -> PlainTextResponse:
        return PlainTextResponse(",".join(request.scope["markers"]))

    return finish_ui_app(
        app,
        settings,
        content_security_policy="default-src 'self'",
        error_page=_page,
        too_large_message="Too much.",
        around_routes=[Middleware(Marker, name="routes-1"), Middleware(Marker, name="routes-2")],
        around_body_cap=[Middleware(Marker, name="cap")],
    )


def test_health_and_readiness_follow_the_gateway(tmp_path: Path) -> None:
    with TestClient(_app(tmp_path)) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").json() == {"status": "ready", "checks": {"gateway": True}}
        client.app.state.gateway.ready_answer = False  # type: ignore[attr-defined]
        not_ready = client.get("/readyz")
        assert (not_ready.status_code, not_ready.json()["checks"]) == (503, {"gateway": False})
        assert client.app.state.gateway.url == "http://127.0.0.1:9/graphql"  # type: ignore[attr-defined]


def test_a_crash_is_the_apps_500_page_with_the_request_id_and_the_headers(tmp_path: Path) -> None:
    with TestClient(_app(tmp_path), raise_server_exceptions=False) as client:
        response = client.get("/crash", headers={"X-Request-ID": "crash-req-1"})
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/html")
    assert "<p>crash-req-1</p>" in response.text
    assert "boom" not in response.text
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"


def test_the_apps_middleware_sits_where_asked_and_the_body_cap_between(tmp_path: Path) -> None:
    with TestClient(_app(tmp_path)) as client:
        assert client.post("/markers").text == "cap,routes-1,routes-2"
        too_large = client.post("/markers", content=b"x" * 2048)
    assert too_large.status_code == 413
    assert "<p>Too much.</p>" in too_large.text
    assert too_large.headers["content-security-policy"] == "default-src 'self'"
