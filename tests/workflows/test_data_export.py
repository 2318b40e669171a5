"""DataExport: the archive's content and schema, and its deletion when the link period ends."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import CancelledError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.gdpr_database import GdprDatabaseActivities
from iaf.db.engine import make_engine, make_sessionmaker
from iaf.gdpr.export_schema import EXPORT_SCHEMA, SECTIONS, validation_errors
from schemas.gdpr import ExportResult, GdprWorkflowInput, StepInput
from tests.agent_helpers import temporal
from tests.gdpr_helpers import (
    compliance_officer,
    org_user,
    read_archive,
    scalar,
    self_request,
    wait_request,
)
from tests.helpers import signup
from workflows.data_export import DataExport

TEST_SERVER = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "temporal-test-server"


async def test_archive_holds_the_subjects_data_as_json_and_csv_but_not_others_messages(client):
    admin = await signup(client, "Archive Admin")
    officer = await compliance_officer(admin)
    subject = await org_user(admin, "Archive Subject")
    room = await admin.new_room("archive room", member_ids=[subject.id])
    await subject.say(room["id"], "subject line one")
    await subject.say(room["id"], 'subject line "two", with a comma')
    await admin.say(room["id"], f"admin mentions @{subject.user['handle']} privately")
    await subject.put("/api/user/consents", json={"consents": {"marketing": True}})

    created = await officer.post(
        "/api/compliance/requests",
        json={"kind": "export", "subjects": [{"user_id": subject.id}], "reason": "ticket 5"},
    )
    request = created.json()["items"][0]["request"]
    assert request["workflow_id"] == f"export-{request['id']}"
    done = await wait_request(officer, request["id"], ("complete", "error"))
    assert done["status"] == "complete" and done["archive_bytes"] > 0
    document, files = read_archive(
        (await officer.get(f"/api/compliance/requests/{request['id']}/archive")).content
    )

    assert validation_errors(document) == []
    assert json.loads(files["schema.json"]) == EXPORT_SCHEMA
    assert {f"csv/{name}.csv" for name in SECTIONS} <= set(files)
    info = document["information"]
    assert {"purposes", "categories", "recipients", "retention", "source", "rights"} <= set(info)
    assert info["retention"]["export_archives_days"] > 0
    sections = document["sections"]
    assert [m["content"] for m in sections["messages"]] == [
        "subject line one",
        'subject line "two", with a comma',
    ]
    assert [r["room_id"] for r in sections["rooms"]] == [room["id"]]
    assert [(c["purpose"], c["granted"]) for c in sections["consent_history"]] == [
        ("marketing", True)
    ]
    assert [r["kind"] for r in sections["requests"]] == ["export"]
    assert len(sections["mentions_of_you"]) == 1
    assert b"privately" not in b"".join(files.values())
    rows = list(csv.DictReader(io.StringIO(files["csv/messages.csv"].decode())))
    assert [r["content"] for r in rows] == [m["content"] for m in sections["messages"]]


def test_schema_rejects_a_document_missing_what_article_15_requires():
    document = {"format": "iaf-gdpr-export", "version": 1, "request_id": str(uuid.uuid4())}
    errors = validation_errors(document)
    assert any("required" in e for e in errors)
    wrong_section = {"messages": [{"id": "not-an-int"}]}
    assert validation_errors({**document, "sections": wrong_section})


async def test_archive_is_deleted_when_the_link_period_ends(client, settings):
    """Five days on the time-skipping server, with the real activities against PostgreSQL."""
    person = await signup(client, "Expiring Export")
    engine = make_engine(settings.database_url, 2)
    sessionmaker = make_sessionmaker(engine)
    try:
        request_id = await self_request(settings, person.id, "export")
        activities = GdprDatabaseActivities(sessionmaker, settings)
        async with await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=str(TEST_SERVER), data_converter=pydantic_data_converter
        ) as env:
            worker = Worker(
                env.client,
                task_queue="export-ts",
                workflows=[DataExport],
                activities=[
                    activities.export_plan,
                    activities.export_archive,
                    activities.export_expire,
                    activities.mark_failed,
                    activities.mark_cancelled,
                ],
            )
            async with worker:
                started = await env.get_current_time()
                result = await env.client.execute_workflow(
                    DataExport.run,
                    GdprWorkflowInput(request_id=str(request_id)),
                    id=f"export-{request_id}",
                    task_queue="export-ts",
                )
                elapsed = await env.get_current_time() - started
        assert result.status == "complete" and result.archive_bytes > 0
        assert elapsed >= timedelta(days=settings.export_link_days)
        assert not (settings.data_dir / "exports" / f"{request_id}.zip").exists()
        deleted_at = await scalar(
            settings,
            "SELECT archive_deleted_at FROM data_subject_requests WHERE id = :id",
            id=request_id,
        )
        assert deleted_at is not None
        status = await person.get("/api/user/data-export/status")
        assert status.json()["status"] == "complete" and status.json()["download_url"] is None
        again = await person.get("/api/user/data-export")
        assert again.status_code == 202 and again.json()["id"] != str(request_id)
    finally:
        await engine.dispose()


async def test_an_export_cancelled_while_its_archive_is_built_ends_cancelled(client, settings):
    """A cancel from the Temporal UI mid-archive: the request says cancelled, never error."""
    person = await signup(client, "Cancelled Export")
    engine = make_engine(settings.database_url, 2)
    sessionmaker = make_sessionmaker(engine)
    building = asyncio.Event()

    @activity.defn(name="gdpr_export_archive")
    async def slow_archive(step: StepInput) -> ExportResult:
        building.set()
        while True:
            activity.heartbeat()
            await asyncio.sleep(0.2)

    try:
        request_id = await self_request(settings, person.id, "export")
        real = GdprDatabaseActivities(sessionmaker, settings)
        tc = await temporal(settings)
        queue = f"export-cancel-{uuid.uuid4()}"
        async with Worker(
            tc,
            task_queue=queue,
            workflows=[DataExport],
            activities=[real.export_plan, slow_archive, real.mark_failed, real.mark_cancelled],
        ):
            handle = await tc.start_workflow(
                DataExport.run,
                GdprWorkflowInput(request_id=str(request_id)),
                id=f"export-cancel-{request_id}",
                task_queue=queue,
            )
            await asyncio.wait_for(building.wait(), timeout=120)
            await handle.cancel()
            with pytest.raises(WorkflowFailureError) as failure:
                await handle.result()
        assert isinstance(failure.value.cause, CancelledError)
        status = await scalar(
            settings, "SELECT status FROM data_subject_requests WHERE id = :id", id=request_id
        )
        assert status == "cancelled"
    finally:
        await engine.dispose()
