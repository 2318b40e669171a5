"""GET /healthz: each dependency's state, 503 when one the API needs is down.

Anyone may call it, so a failure is reported as a short code ("timeout", "unreachable",
"not_ready", "error"); the exception itself goes to the log for operators.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

from api.deps import StateDep

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])

# A check returns None when all is well, or (status, detail) to say more; it raises when the
# dependency is down. "unverified" means nothing real could be checked: it is not an outage.
CheckResult = tuple[str, str] | None
_PROC_LOCKS = Path("/proc/locks")


def failure_code(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.HTTPStatusError):
        return "not_ready"
    if isinstance(exc, OSError | httpx.TransportError):
        return "unreachable"
    return "error"


async def _timed(name: str, check: Awaitable[CheckResult]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        outcome = await asyncio.wait_for(check, timeout=3)
        status, detail = outcome if outcome is not None else ("ok", None)
    except Exception as exc:
        status, detail = "down", failure_code(exc)
        log.info("health check %s failed: %s: %s", name, type(exc).__name__, exc)
    result: dict[str, Any] = {
        "status": status,
        "ms": round((time.perf_counter() - started) * 1000, 1),
    }
    if detail:
        result["detail"] = detail
    return result


async def _postgres(state: StateDep) -> CheckResult:
    async with state.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
    return None


async def _temporal(state: StateDep) -> CheckResult:
    await state.temporal.workflow_service.get_system_info(GetSystemInfoRequest())
    return None


def local_qdrant_state(path: Path, proc_locks: Path = _PROC_LOCKS) -> tuple[str, str]:
    """What can be told about the embedded Qdrant (Edge) storage without opening it.

    Only one process may open it (rule 6), and the retrieval worker does: opening it here,
    even to try its lock, could keep the worker from starting. The worker holds an exclusive
    flock on `<path>/.lock` while it has the storage open, and Linux lists the flocks it
    holds in /proc/locks (device and inode), so reading that is a real check.
    """
    lock_file = path / ".lock"
    if not path.is_dir():
        return "down", "local_storage_missing"
    if not os.access(path, os.W_OK | os.X_OK):
        return "down", "local_storage_not_writable"
    if not lock_file.exists():
        # Never opened: the retrieval worker has not started on this storage yet.
        return "down", "local_storage_not_served"
    try:
        stat = lock_file.stat()
        held = proc_locks.read_text()
    except OSError:  # not Linux, or /proc not mounted: nothing more can be told
        return "unverified", "embedded (served by the retrieval worker)"
    key = f"{os.major(stat.st_dev):02x}:{os.minor(stat.st_dev):02x}:{stat.st_ino}"
    for line in held.splitlines():
        fields = line.split()
        if "FLOCK" in fields and key in fields and "->" not in fields:  # not a waiter
            return "ok", "embedded, storage held by the retrieval worker"
    return "down", "local_storage_not_served"


async def _qdrant(state: StateDep) -> CheckResult:
    settings = state.settings
    if not settings.qdrant_url:
        status, detail = await asyncio.to_thread(local_qdrant_state, settings.resolved_qdrant_path)
        return status, detail
    async with httpx.AsyncClient(timeout=2) as client:
        (await client.get(settings.qdrant_url.rstrip("/") + "/readyz")).raise_for_status()
    return None


async def _smtp(state: StateDep) -> CheckResult:
    _, writer = await asyncio.open_connection(state.settings.smtp_host, state.settings.smtp_port)
    writer.close()
    await writer.wait_closed()
    return None


class HealthCache:
    """One check at a time, its answer reused for `max_age` seconds: anyone may call /healthz,
    and each check opens a connection to SMTP and asks PostgreSQL and Temporal, so a flood of
    anonymous calls must cost one check per interval, not one per call."""

    def __init__(self, max_age: float) -> None:
        self.max_age = max_age
        self.checked_at = -float("inf")
        self.answer: tuple[dict[str, Any], int] | None = None
        self.lock = asyncio.Lock()

    async def get(self, state: StateDep) -> tuple[dict[str, Any], int]:
        async with self.lock:  # callers arriving during a check wait for its answer
            if self.answer is None or time.monotonic() - self.checked_at > self.max_age:
                self.answer = await _check_all(state)
                self.checked_at = time.monotonic()
            return self.answer


async def _check_all(state: StateDep) -> tuple[dict[str, Any], int]:
    names = ("postgres", "temporal", "qdrant", "smtp")
    results = await asyncio.gather(
        _timed("postgres", _postgres(state)),
        _timed("temporal", _temporal(state)),
        _timed("qdrant", _qdrant(state)),
        _timed("smtp", _smtp(state)),
    )
    checks = dict(zip(names, results, strict=True))
    # Posting works without Temporal or SMTP (rule 5): only PostgreSQL makes the API unready.
    ready = checks["postgres"]["status"] == "ok"
    degraded = any(c["status"] == "down" for c in checks.values())
    body = {
        "status": "ok" if not degraded else ("degraded" if ready else "down"),
        "checks": checks,
        "checked_at": datetime.now(UTC).isoformat(),
    }
    return body, 200 if ready else 503


@router.get("/healthz")
async def healthz(request: Request, state: StateDep) -> JSONResponse:
    cache: HealthCache | None = getattr(request.app.state, "health_cache", None)
    if cache is None:
        cache = request.app.state.health_cache = HealthCache(state.settings.health_cache_seconds)
    body, status = await cache.get(state)
    return JSONResponse(body, status_code=status)
