"""The Idempotency-Key dependency refuses a bad header before anything is claimed (no database needed: a
refused request never reaches the store, and a request without a key runs without one)."""

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.responses import JSONResponse, Response

from servicekit.errors import install_error_handlers
from servicekit.idempotency import IdempotencyStore, IdempotentRequest, OptionallyIdempotentRequest


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    # Never connected: every request here is refused, or runs without a key, before the store is used.
    app.state.idempotency = IdempotencyStore(
        create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none"), "t.idempotency_keys"
    )

    @app.post("/required")
    async def required(idempotent: IdempotentRequest) -> Response:
        return await idempotent.run({}, ran)

    @app.post("/optional")
    async def optional(idempotent: OptionallyIdempotentRequest) -> Response:
        return await idempotent.run(None, ran)

    async def ran() -> Response:
        return JSONResponse({"ran": True})

    return TestClient(app)


def test_a_required_key_that_is_missing_is_a_400_that_says_to_send_one(client: TestClient) -> None:
    response = client.post("/required")
    assert response.status_code == 400
    assert response.json()["code"] == "idempotency_key_missing"
    assert "Idempotency-Key" in response.json()["detail"]


# Bytes, as they arrive: "café" in Latin-1 is what a header can carry beyond ASCII (Starlette decodes it so).
@pytest.mark.parametrize("key", [b"", b"x" * 256, b"tab\there", "café".encode("latin-1")])
@pytest.mark.parametrize("path", ["/required", "/optional"])
def test_an_empty_overlong_or_unprintable_key_is_a_400(client: TestClient, path: str, key: bytes) -> None:
    response = client.post(path, headers={"Idempotency-Key": key})
    assert response.status_code == 400
    assert response.json()["code"] == "idempotency_key_invalid"
    assert "1 to 255 printable ASCII characters" in response.json()["detail"]


def test_an_optional_key_may_be_left_out_and_the_request_simply_runs(client: TestClient) -> None:
    response = client.post("/optional")
    assert response.status_code == 200
    assert response.json() == {"ran": True}
    assert "Idempotent-Replayed" not in response.headers


def test_the_header_is_documented_as_required_or_optional(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    (required,) = paths["/required"]["post"]["parameters"]
    (optional,) = paths["/optional"]["post"]["parameters"]
    assert required["name"] == optional["name"] == "Idempotency-Key"
    assert required["description"].startswith("Required")
    assert optional["description"].startswith("Optional")
