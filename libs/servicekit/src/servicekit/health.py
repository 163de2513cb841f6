"""Liveness and readiness: /healthz says the process answers, /readyz that its database does."""

from fastapi import APIRouter
from sqlalchemy import text
from starlette.responses import JSONResponse

from servicekit.db import EngineDep

router = APIRouter(tags=["health"])


@router.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", include_in_schema=False)
async def readyz(engine: EngineDep) -> JSONResponse:
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # readiness reports any failure to reach the database, whatever its kind
        return JSONResponse({"status": "unavailable", "reason": type(exc).__name__}, status_code=503)
    return JSONResponse({"status": "ready"})
