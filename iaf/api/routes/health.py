"""GET /healthz: each dependency's state, 503 when one the API needs is down."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

from iaf.api.deps import StateDep

router = APIRouter(tags=["health"])


async def _timed(check: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        detail = await asyncio.wait_for(check, timeout=3)
        status = "ok"
    except Exception as exc:
        detail, status = f"{type(exc).__name__}: {exc}"[:200], "down"
    result: dict[str, Any] = {
        "status": status,
        "ms": round((time.perf_counter() - started) * 1000, 1),
    }
    if detail:
        result["detail"] = detail
    return result


async def _postgres(state: StateDep) -> None:
    async with state.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def _temporal(state: StateDep) -> None:
    await state.temporal.workflow_service.get_system_info(GetSystemInfoRequest())


async def _qdrant(state: StateDep) -> str:
    settings = state.settings
    if not settings.qdrant_url:
        return f"local mode at {settings.resolved_qdrant_path} (owned by the worker)"
    async with httpx.AsyncClient(timeout=2) as client:
        (await client.get(settings.qdrant_url.rstrip("/") + "/readyz")).raise_for_status()
    return ""


async def _smtp(state: StateDep) -> None:
    _, writer = await asyncio.open_connection(state.settings.smtp_host, state.settings.smtp_port)
    writer.close()
    await writer.wait_closed()


@router.get("/healthz")
async def healthz(state: StateDep) -> JSONResponse:
    names = ("postgres", "temporal", "qdrant", "smtp")
    results = await asyncio.gather(
        _timed(_postgres(state)),
        _timed(_temporal(state)),
        _timed(_qdrant(state)),
        _timed(_smtp(state)),
    )
    checks = dict(zip(names, results, strict=True))
    # Posting works without Temporal or SMTP (rule 5): only PostgreSQL makes the API unready.
    ready = checks["postgres"]["status"] == "ok"
    degraded = any(c["status"] != "ok" for c in checks.values())
    body = {"status": "ok" if not degraded else ("degraded" if ready else "down"), "checks": checks}
    return JSONResponse(body, status_code=200 if ready else 503)
