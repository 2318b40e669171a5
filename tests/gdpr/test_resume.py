"""Rule 5 for GDPR requests: a request stored while Temporal was unreachable is started by the
periodic resume, and erasure targets do not outlive their request."""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from iaf.db.models import User
from iaf.db.repositories.erasure_targets import ErasureTargetRepository
from iaf.db.repositories.gdpr_requests import RequestRepository
from iaf.gdpr import service
from iaf.gdpr.resume import resume_requests_once
from tests.gdpr_helpers import PASSWORD, compliance_officer, db, org_user, scalar, wait_request
from tests.helpers import signup


def temporal_down(monkeypatch) -> None:
    async def unreachable(*args, **kwargs):
        raise RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b"")

    monkeypatch.setattr(service, "start_workflow", unreachable)


async def test_requests_made_while_temporal_was_down_are_started_later(
    client, settings, worker, monkeypatch
):
    admin = await signup(client, "Resume Admin")
    officer = await compliance_officer(admin)
    leaving = await org_user(admin, "Leaving Later")
    erased = await org_user(admin, "Erased Later")
    exported = await org_user(admin, "Exported Later")

    temporal_down(monkeypatch)
    scheduled = await leaving.post("/api/user/delete-account", json={"password": PASSWORD})
    assert scheduled.status_code == 202 and scheduled.json()["status"] == "in_grace"
    batch = await officer.post(
        "/api/compliance/requests",
        json={
            "kind": "erasure",
            "subjects": [{"user_id": erased.id}],
            "reason": "ticket 51",
            "grace_days": 0,
        },
    )
    export = await exported.get("/api/user/data-export")
    assert batch.status_code == 201 and export.status_code == 202
    erasure = batch.json()["items"][0]["request"]
    assert erasure["status"] == "pending" and export.json()["status"] == "pending"
    monkeypatch.undo()

    ids = [scheduled.json()["workflow_id"], erasure["workflow_id"], export.json()["workflow_id"]]
    for workflow_id in ids:  # nothing was started
        try:
            await worker.temporal.get_workflow_handle(workflow_id).describe()
            raise AssertionError(f"{workflow_id} exists")
        except RPCError as error:
            assert error.status == RPCStatusCode.NOT_FOUND

    result = await resume_requests_once(
        worker.sessionmaker, worker.temporal, settings, min_age=timedelta(0)
    )
    assert result.started >= 3
    grace = await worker.temporal.get_workflow_handle(ids[0]).describe()
    assert grace.status == WorkflowExecutionStatus.RUNNING  # the grace timer is running now
    done = await wait_request(officer, erasure["id"], ("complete", "error"), patience=120)
    assert done["status"] == "complete", (done["failed_step"], done["verification"])
    assert (await exported.get("/api/user/data-export/status")).json()["status"] in (
        "pending",
        "in_progress",
        "complete",
    )
    # A second round finds every workflow running or finished: nothing is started twice.
    again = await resume_requests_once(
        worker.sessionmaker, worker.temporal, settings, min_age=timedelta(0)
    )
    assert again.started == 0
    cancelled = await leaving.post("/api/user/delete-account/cancel")
    assert cancelled.status_code == 200


async def test_erasure_targets_are_purged_when_over_or_too_old(client, settings, worker):
    admin = await signup(client, "Purge Admin")
    stale_subject = await org_user(admin, "Stale Target")
    async with db(settings) as session:
        user = await session.get(User, uuid.UUID(stale_subject.id))
        assert user is not None
        request, _ = await service.create_request(
            session,
            settings,
            kind="erasure",
            subject=user,
            requester=user,
            via="self",
            reason="test",
            grace_days=0,
        )
        await RequestRepository(session).set_status(request.id, "error", failed_step="verify")
        await ErasureTargetRepository(session).capture(request.id, user)
        await session.commit()
    count = "SELECT count(*) FROM erasure_targets WHERE request_id = :id"
    await resume_requests_once(worker.sessionmaker, worker.temporal, settings)
    assert await scalar(settings, count, id=request.id) == 1  # failed, but recent: kept
    async with db(settings) as session:
        from sqlalchemy import text

        await session.execute(
            text(
                "UPDATE erasure_targets SET created_at = now() - interval '40 days'"
                " WHERE request_id = :id"
            ),
            {"id": request.id},
        )
        await session.commit()
    result = await resume_requests_once(worker.sessionmaker, worker.temporal, settings)
    assert result.targets_purged >= 1
    assert await scalar(settings, count, id=request.id) == 0
