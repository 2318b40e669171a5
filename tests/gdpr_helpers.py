"""Shared by the GDPR tests: compliance officers, polling requests, DB access, history scans."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import uuid
import zipfile
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from iaf.db.engine import make_engine, make_sessionmaker
from iaf.db.models import User
from iaf.gdpr import service
from iaf.gdpr.scan import Needles
from iaf.settings import Settings
from tests.helpers import Person, unique_email

PASSWORD = "correct horse battery"


async def org_user(
    admin: Person, name: str, role: str = "member", email: str | None = None
) -> Person:
    email = email or unique_email(role)
    created = await admin.post(
        "/api/org/users", json={"email": email, "name": name, "password": PASSWORD, "role": role}
    )
    assert created.status_code == 201, created.text
    login = await admin.client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    body = login.json()
    return Person(admin.client, body["access_token"], body["user"])


async def compliance_officer(admin: Person) -> Person:
    return await org_user(admin, "Data Team Officer", role="compliance")


async def wait_request(
    officer: Person, request_id: str, statuses: tuple[str, ...], patience: float = 90.0
) -> dict[str, Any]:
    """Poll the compliance API until the request reaches one of `statuses`."""
    deadline = asyncio.get_running_loop().time() + patience
    while True:
        response = await officer.get(f"/api/compliance/requests/{request_id}")
        assert response.status_code == 200, response.text
        body = dict(response.json())
        if body["status"] in statuses:
            return body
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"request {request_id} stuck in {body['status']}: {body['steps']}")
        await asyncio.sleep(0.25)


async def wait_user_export(person: Person, patience: float = 60.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + patience
    while True:
        response = await person.get("/api/user/data-export/status")
        assert response.status_code == 200, response.text
        body = dict(response.json())
        if body["status"] in ("complete", "error", "cancelled"):
            return body
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"export stuck in {body['status']}")
        await asyncio.sleep(0.25)


def read_archive(content: bytes) -> tuple[dict[str, Any], dict[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    return json.loads(files["export.json"]), files


@contextlib.asynccontextmanager
async def db(settings: Settings) -> AsyncIterator[AsyncSession]:
    engine = make_engine(settings.database_url, 2)
    try:
        async with make_sessionmaker(engine)() as session:
            yield session
    finally:
        await engine.dispose()


async def self_request(settings: Settings, person_id: str, kind: str) -> uuid.UUID:
    """A request the person made about themselves, stored and not started (the test runs it)."""
    async with db(settings) as session:
        user = await session.get(User, uuid.UUID(person_id))
        assert user is not None
        request, _ = await service.create_request(
            session,
            settings,
            kind=kind,
            subject=user,
            requester=user,
            via="self",
            reason="test",
        )
        await session.commit()
        return request.id


async def scalar(settings: Settings, sql: str, **params: Any) -> Any:
    async with db(settings) as session:
        return await session.scalar(text(sql), params)


async def execute(settings: Settings, sql: str, **params: Any) -> int:
    async with db(settings) as session:
        result = await session.execute(text(sql), params)
        await session.commit()
        return int(result.rowcount)  # type: ignore[attr-defined]


async def histories_mentioning(
    temporal: Client, needles: Needles, query: str = ""
) -> dict[str, list[str]]:
    """Every workflow in the namespace (or the query) whose serialized events hold a needle."""
    found: dict[str, list[str]] = {}
    async for execution in temporal.list_workflows(query or None):
        handle = temporal.get_workflow_handle(execution.id, run_id=execution.run_id)
        try:
            history = await handle.fetch_history()
        except Exception:  # deleted between listing and fetching
            continue
        blob = b"".join(event.SerializeToString() for event in history.events)
        kinds = needles.found_in(blob)
        if kinds:
            found[f"{execution.id}/{execution.run_id}"] = kinds
    return found
