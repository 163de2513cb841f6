"""The kit's promises to every app: request ids, masked 500s, problem+json, and commit before response."""

import httpx
import pytest
from fastapi import APIRouter
from sqlalchemy import text

from devstack.testing import LiveServer, wait_until
from servicekit.app import create_service_app
from servicekit.callers import allow
from servicekit.db import SessionDep
from servicekit.settings import DatabaseSettings

KIT_TOKEN = "kit-test-caller-token"
AS_KIT_CALLER = {"Authorization": f"Bearer {KIT_TOKEN}"}

router = APIRouter()


@router.get("/boom")
async def boom() -> dict[str, str]:
    raise RuntimeError("secret internals: password=hunter2")


@router.post("/deferred-violation")
async def deferred_violation(session: SessionDep) -> dict[str, str]:
    # The row is fine now; the deferred constraint fails only at COMMIT.
    await session.execute(text("INSERT INTO public.kit_deferred (v) VALUES (1), (1)"))
    return {"status": "written"}


@router.post("/write")
async def write(session: SessionDep) -> dict[str, str]:
    await session.execute(text("INSERT INTO public.kit_deferred (v) VALUES (42)"))
    return {"status": "written"}


@router.get("/echo-text")
async def echo_text(session: SessionDep, value: str) -> dict[str, str]:
    # No validation on purpose: the database itself refuses a NUL byte (SQLSTATE 22021).
    return {"value": (await session.execute(text("SELECT CAST(:v AS text)"), {"v": value})).scalar_one()}


@pytest.fixture(scope="module")
def kit_url(migrated_admin_url):
    import asyncio

    import asyncpg

    from servicekit.db import plain_url

    async def prepare() -> None:
        conn = await asyncpg.connect(plain_url(migrated_admin_url))
        await conn.execute(
            """
            CREATE TABLE IF NOT EXISTS public.kit_deferred (
                v int, CONSTRAINT kit_unique UNIQUE (v) DEFERRABLE INITIALLY DEFERRED)
            """
        )
        await conn.close()

    asyncio.run(prepare())
    app = create_service_app(
        DatabaseSettings(
            database_url=migrated_admin_url, service_name="kit", caller_tokens={"kit-test": KIT_TOKEN}
        ),
        title="kit",
        routers=[router],
        callers=allow(reads=["kit-test"], writes=["kit-test"]),
    )
    with LiveServer(app) as server:
        yield server.url


async def test_a_request_id_is_generated_and_echoed(kit_url):
    async with httpx.AsyncClient(base_url=kit_url, headers=AS_KIT_CALLER) as client:
        response = await client.get("/healthz")
    assert len(response.headers["x-request-id"]) == 32


async def test_a_callers_request_id_is_kept_and_a_hostile_one_replaced(kit_url):
    async with httpx.AsyncClient(base_url=kit_url, headers=AS_KIT_CALLER) as client:
        kept = await client.get("/healthz", headers={"X-Request-ID": "trace-abc.123"})
        replaced = await client.get("/healthz", headers={"X-Request-ID": "x" * 500})
        injected = await client.get("/healthz", headers={"X-Request-ID": 'a"}{"level":"fake'})
    assert kept.headers["x-request-id"] == "trace-abc.123"
    assert replaced.headers["x-request-id"] != "x" * 500
    assert len(injected.headers["x-request-id"]) == 32


async def test_an_unexpected_error_is_a_masked_problem_with_the_request_id(kit_url):
    async with httpx.AsyncClient(base_url=kit_url, headers=AS_KIT_CALLER) as client:
        response = await client.get("/boom", headers={"X-Request-ID": "req-500"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "internal_error"
    assert body["request_id"] == "req-500"
    assert response.headers["x-request-id"] == "req-500"
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text


async def test_a_failed_commit_is_an_error_response_never_a_success(kit_url, db):
    """The session dependency commits before the response is sent; a commit that fails cannot say 200."""
    async with httpx.AsyncClient(base_url=kit_url, headers=AS_KIT_CALLER) as client:
        response = await client.post("/deferred-violation")
    assert response.status_code >= 500
    assert response.headers["content-type"] == "application/problem+json"
    assert await db.fetchval("SELECT count(*) FROM public.kit_deferred WHERE v = 1") == 0


async def test_a_successful_write_is_committed_when_the_response_arrives(kit_url, db):
    async with httpx.AsyncClient(base_url=kit_url, headers=AS_KIT_CALLER) as client:
        response = await client.post("/write")
    assert response.status_code == 200
    assert await db.fetchval("SELECT count(*) FROM public.kit_deferred WHERE v = 42") == 1


async def test_readiness_reports_the_database(kit_url):
    async with httpx.AsyncClient(base_url=kit_url, headers=AS_KIT_CALLER) as client:
        assert (await client.get("/readyz")).json() == {"status": "ready"}


async def test_every_log_line_is_json_with_the_request_id(kit_url, server_logs):
    async with httpx.AsyncClient(base_url=kit_url) as client:
        await client.get("/healthz", headers={"X-Request-ID": "log-check-1"})

    # The line is written once the response is out, so it may land a moment after the client has it.
    def finished() -> list[dict[str, object]]:
        return [
            line
            for line in server_logs.events()
            if line.get("event") == "request_finished" and line.get("request_id") == "log-check-1"
        ]

    async def logged() -> bool:
        return bool(finished())

    await wait_until(logged)
    assert finished()[0]["service"] == "kit"
    assert finished()[0]["status"] == 200


async def test_input_the_database_refuses_is_a_422_not_a_500(kit_url):
    async with httpx.AsyncClient(base_url=kit_url, headers=AS_KIT_CALLER) as client:
        fine = await client.get("/echo-text", params={"value": "mug"})
        refused = await client.get("/echo-text", params={"value": "mug\x00"})
    assert fine.json() == {"value": "mug"}
    assert refused.status_code == 422
    assert refused.json()["code"] == "invalid_input"
