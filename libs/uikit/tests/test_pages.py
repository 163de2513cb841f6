"""HtmlBodySizeLimit: a body over the cap gets the app's own 413 page, declared or streamed."""

from collections.abc import Iterator

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from fastapi.testclient import TestClient
from starlette.types import Scope

from uikit.pages import HtmlBodySizeLimit, request_id


def _page(scope: Scope, status: int, message: str) -> Response:
    return HTMLResponse(f"<h1>{status}</h1><p>{message}</p><p>{request_id(scope)}</p>", status_code=status)


def _client() -> TestClient:
    app = FastAPI()

    @app.post("/form")
    async def form(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(len(await request.body())))

    app.add_middleware(HtmlBodySizeLimit, max_bytes=1024, error_page=_page, message="Too much.")
    return TestClient(app)


def test_a_body_under_the_cap_goes_through() -> None:
    assert _client().post("/form", content=b"x" * 1024).text == "1024"


def test_a_declared_or_streamed_body_over_the_cap_gets_the_apps_413_page() -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(4):
            yield b"x" * 512

    client = _client()
    for response in (client.post("/form", content=b"x" * 1025), client.post("/form", content=chunks())):
        assert response.status_code == 413
        assert response.headers["content-type"].startswith("text/html")
        assert "<p>Too much.</p>" in response.text
