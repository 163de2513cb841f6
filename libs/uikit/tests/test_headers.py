"""SecurityHeaders: added to every response, never over a header the response set itself."""

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse, RedirectResponse
from fastapi.testclient import TestClient

from uikit.headers import SecurityHeaders

CSP = "default-src 'self'"


def _client() -> TestClient:
    app = FastAPI()

    @app.get("/page")
    async def page() -> PlainTextResponse:
        return PlainTextResponse("hello")

    @app.get("/away")
    async def away() -> RedirectResponse:
        return RedirectResponse("/page", status_code=303)

    @app.get("/own")
    async def own() -> PlainTextResponse:
        return PlainTextResponse(
            "x", headers={"Cache-Control": "max-age=60", "Content-Security-Policy": "default-src 'none'"}
        )

    @app.get("/static/app.css")
    async def css() -> PlainTextResponse:
        return PlainTextResponse("body {}", media_type="text/css")

    app.add_middleware(SecurityHeaders, content_security_policy=CSP)
    return TestClient(app)


def test_every_response_gets_them_redirects_and_404s_included() -> None:
    client = _client()
    for response in (
        client.get("/page"),
        client.get("/away", follow_redirects=False),
        client.get("/nowhere"),
        client.get("/static/missing.css"),
    ):
        assert response.headers["content-security-policy"] == CSP
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"
        assert response.headers["cache-control"] == "no-store"


def test_a_header_the_response_set_is_kept_and_not_repeated() -> None:
    response = _client().get("/own")
    assert response.headers.get_list("cache-control") == ["max-age=60"]
    assert response.headers.get_list("content-security-policy") == ["default-src 'none'"]


def test_a_static_file_that_exists_may_be_cached() -> None:
    response = _client().get("/static/app.css")
    assert "cache-control" not in response.headers
    assert response.headers["x-content-type-options"] == "nosniff"
