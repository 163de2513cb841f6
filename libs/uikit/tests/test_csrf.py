"""uikit.csrf.CsrfMiddleware: asgi-csrf answering with the app's own 403 and 400 pages."""

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from fastapi.testclient import TestClient
from starlette.types import Scope

from uikit.csrf import CsrfMiddleware, csrf_token
from uikit.pages import CrashPage

POSTED: list[str] = []


def _page(scope: Scope, status: int, message: str) -> Response:
    return HTMLResponse(f"<h1>{status}</h1><p>{message}</p>", status_code=status)


def _client(**options: object) -> TestClient:
    app = FastAPI()

    @app.get("/form")
    async def form(request: Request) -> PlainTextResponse:
        return PlainTextResponse(csrf_token(request) or "")

    @app.post("/form")
    async def post(request: Request) -> PlainTextResponse:
        POSTED.append(str((await request.form()).get("value")))
        return PlainTextResponse("ok")

    @app.post("/crash")
    async def crash() -> Response:
        raise RuntimeError("boom")

    app.add_middleware(
        CsrfMiddleware,
        secret_key="test",
        signing_namespace="test.csrf",
        error_page=_page,
        refused_message="Refused.",
        unreadable_message="Unreadable.",
        cookie_secure=False,
        **options,
    )
    app.add_middleware(CrashPage, error_page=_page)
    return TestClient(app)


def test_a_form_with_the_token_goes_through_and_one_without_is_the_apps_403() -> None:
    POSTED.clear()
    client = _client()
    token = client.get("/form").text
    assert client.cookies["csrftoken"] == token
    assert client.post("/form", data={"csrftoken": token, "value": "kept"}).text == "ok"
    for forged in ({}, {"csrftoken": "forged"}, {"csrftoken": token + "x"}):
        refused = client.post("/form", data={**forged, "value": "forged"})
        assert (refused.status_code, refused.text) == (403, "<h1>403</h1><p>Refused.</p>")
    assert POSTED == ["kept"]


def test_every_path_is_protected_even_without_cookies_unless_told_otherwise() -> None:
    POSTED.clear()
    assert _client().post("/form", data={"value": "x"}).status_code == 403
    assert _client(always_protect=frozenset({"/other"})).post("/form", data={"value": "y"}).text == "ok"
    assert POSTED == ["y"]


def test_a_form_asgi_csrf_cannot_read_is_the_apps_400() -> None:
    client = _client()
    token = client.get("/form").text
    for content_type, body in (
        ("application/x-www-form-urlencoded", b"csrftoken=\xff"),
        ("multipart/form-data", f"csrftoken={token}".encode()),
    ):
        response = client.post("/form", content=body, headers={"content-type": content_type})
        assert (response.status_code, response.text) == (400, "<h1>400</h1><p>Unreadable.</p>")


def test_a_crash_past_the_check_is_the_crash_pages() -> None:
    client = _client()
    token = client.get("/form").text
    assert client.post("/crash", data={"csrftoken": token}).status_code == 500


def test_the_lifespan_goes_through() -> None:
    with _client() as client:  # runs the lifespan
        assert client.get("/form").status_code == 200
