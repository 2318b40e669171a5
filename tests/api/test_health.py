"""GET /healthz: real checks only, and no dependency's error text for anonymous callers."""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from api.routes.health import local_qdrant_state
from tests.conftest import make_settings
from tests.helpers import free_port, serve_api

CODES = {"timeout", "unreachable", "not_ready", "error"}


async def test_healthz_checks_the_local_qdrant_storage_the_worker_holds(client, settings):
    response = await client.get("/healthz")
    assert response.status_code == 200
    checks = response.json()["checks"]
    assert settings.qdrant_url is None  # the test stack runs the embedded Qdrant (Edge)
    # The session's worker has the storage open (its flock is held): a real "ok".
    assert checks["qdrant"]["status"] == "ok", checks["qdrant"]
    assert "worker" in checks["qdrant"]["detail"]
    assert str(settings.resolved_qdrant_path) not in response.text, "no paths for anonymous"
    for name, check in checks.items():
        if check["status"] == "down":
            assert check["detail"] in CODES, (name, check)


async def test_a_down_dependency_is_reported_by_a_short_code(client, settings):
    # A second API whose Temporal and SMTP addresses nobody listens on.
    other = make_settings(
        settings.data_dir,
        settings.database_url,
        f"127.0.0.1:{free_port()}",
        smtp_port=free_port(),
    )
    async with serve_api(other) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        response = await http.get("/healthz")
    body = response.json()
    assert response.status_code == 200 and body["status"] == "degraded"
    for name in ("temporal", "smtp"):
        assert body["checks"][name]["status"] == "down"
        assert body["checks"][name]["detail"] in CODES, body["checks"][name]
    assert "Error" not in response.text and "Errno" not in response.text


def test_local_storage_states(tmp_path: Path):
    storage = tmp_path / "qdrant"
    assert local_qdrant_state(storage) == ("down", "local_storage_missing")
    storage.mkdir()
    assert local_qdrant_state(storage) == ("down", "local_storage_not_served")
    lock = storage / ".lock"
    lock.write_text("")
    stat = lock.stat()
    key = f"{os.major(stat.st_dev):02x}:{os.minor(stat.st_dev):02x}:{stat.st_ino}"
    nobody = tmp_path / "locks-empty"
    nobody.write_text(f"1: POSIX  ADVISORY  WRITE 12 00:01:{stat.st_ino + 1} 0 EOF\n")
    assert local_qdrant_state(storage, nobody) == ("down", "local_storage_not_served")
    waiter = tmp_path / "locks-waiter"
    waiter.write_text(f"1: -> FLOCK  ADVISORY  WRITE 12 {key} 0 EOF\n")
    assert local_qdrant_state(storage, waiter) == ("down", "local_storage_not_served")
    held = tmp_path / "locks-held"
    held.write_text(
        f"1: POSIX  ADVISORY  READ 9 00:01:5 0 EOF\n2: FLOCK  ADVISORY  WRITE 12 {key} 0 EOF\n"
    )
    status, detail = local_qdrant_state(storage, held)
    assert status == "ok" and "worker" in detail
    status, detail = local_qdrant_state(storage, tmp_path / "no-proc-locks")
    assert status == "unverified" and detail == "embedded (served by the retrieval worker)"
