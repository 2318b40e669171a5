"""The data team's API (role compliance) and the `iaf gdpr` commands that drive it."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from temporalio.service import RPCError, RPCStatusCode
from typer.testing import CliRunner

from iaf import workflow_calls
from iaf.cli import app as cli_app
from iaf.gdpr import faults
from iaf.gdpr.export_schema import validation_errors
from tests.gdpr_helpers import compliance_officer, org_user, read_archive, wait_request
from tests.helpers import signup

real_start_request = workflow_calls.start_gdpr_request


async def test_only_compliance_officers_of_the_org_reach_the_api(client):
    admin = await signup(client, "Org Admin Compliance")
    member = await org_user(admin, "Plain Member")
    officer = await compliance_officer(admin)
    other_officer = await compliance_officer(await signup(client, "Other Org Admin"))
    body = {"kind": "export", "subjects": [{"user_id": member.id}], "reason": "ticket 1"}
    for person in (member, admin):
        assert (await person.get("/api/compliance/requests")).status_code == 403
        assert (await person.post("/api/compliance/requests", json=body)).status_code == 403
    assert (await client.get("/api/compliance/requests")).status_code == 401

    created = await officer.post("/api/compliance/requests", json=body)
    request_id = created.json()["items"][0]["request"]["id"]
    assert (await other_officer.get(f"/api/compliance/requests/{request_id}")).status_code == 404
    assert (
        await other_officer.post(f"/api/compliance/requests/{request_id}/cancel")
    ).status_code == 404
    assert (await officer.get(f"/api/compliance/requests/{uuid.uuid4()}")).status_code == 404
    await wait_request(officer, request_id, ("complete",))


async def test_batch_resolves_ids_and_emails_and_returns_open_requests(client):
    admin = await signup(client, "Batch Admin")
    officer = await compliance_officer(admin)
    ann = await org_user(admin, "Ann Subject")
    ben = await org_user(admin, "Ben Subject")
    stranger = await signup(client, "Stranger Elsewhere")
    body: dict[str, Any] = {
        "kind": "erasure",
        "reason": "tickets 7-10",
        "grace_days": 3,
        "subjects": [
            {"user_id": ann.id},
            {"email": ben.user["email"].upper()},
            {"email": "nobody@example.com"},
            {"user_id": stranger.id},
        ],
    }
    first = await officer.post("/api/compliance/requests", json=body)
    assert first.status_code == 201, first.text
    items = first.json()["items"]
    assert [i["outcome"] for i in items] == ["created", "created", "not_found", "not_found"]
    assert (
        items[0]["request"]["subject_user_id"] == ann.id
        and items[0]["request"]["status"] == "in_grace"
    )
    assert items[1]["request"]["subject_user_id"] == ben.id

    again = await officer.post(
        "/api/compliance/requests", json={**body, "subjects": body["subjects"][:1]}
    )
    assert again.status_code == 200
    assert again.json()["items"][0]["outcome"] == "existing"
    assert again.json()["items"][0]["request"]["id"] == items[0]["request"]["id"]

    listed = await officer.get(
        "/api/compliance/requests", params={"kind": "erasure", "status": "in_grace"}
    )
    ids = {r["id"] for r in listed.json()["items"]}
    assert {items[0]["request"]["id"], items[1]["request"]["id"]} <= ids
    only_ann = await officer.get("/api/compliance/requests", params={"subject_user_id": ann.id})
    assert [r["id"] for r in only_ann.json()["items"]] == [items[0]["request"]["id"]]

    for item in items[:2]:
        cancelled = await officer.post(f"/api/compliance/requests/{item['request']['id']}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    twice = await officer.post(f"/api/compliance/requests/{items[0]['request']['id']}/cancel")
    assert twice.status_code == 409
    assert (await ann.get("/api/me")).status_code == 200


async def test_bad_batches_are_rejected_with_4xx(client):
    officer = await compliance_officer(await signup(client, "Strict Admin"))
    cases = [
        {"kind": "export", "subjects": [], "reason": "r"},
        {"kind": "export", "subjects": [{}], "reason": "r"},
        {
            "kind": "export",
            "subjects": [{"user_id": str(uuid.uuid4()), "email": "a@example.com"}],
            "reason": "r",
        },
        {"kind": "export", "subjects": [{"email": "a@example.com"}], "reason": ""},
        {"kind": "wipe", "subjects": [{"email": "a@example.com"}], "reason": "r"},
        {
            "kind": "export",
            "subjects": [{"email": "a@example.com"}],
            "reason": "r",
            "grace_days": 1,
        },
        {
            "kind": "erasure",
            "subjects": [{"email": "a@example.com"}],
            "reason": "r",
            "grace_days": 90,
        },
    ]
    for body in cases:
        response = await officer.post("/api/compliance/requests", json=body)
        assert response.status_code == 422, (body, response.text)
    assert (
        await officer.get("/api/compliance/requests", params={"status": "weird"})
    ).status_code == 422
    assert (
        await officer.post(f"/api/compliance/requests/{uuid.uuid4()}/retry", json={})
    ).status_code == 404


async def test_stuck_export_can_be_cancelled_and_failed_one_retried(client, settings, monkeypatch):
    monkeypatch.setattr(settings, "gdpr_retry_initial_seconds", 0.2)
    admin = await signup(client, "Retry Admin")
    officer = await compliance_officer(admin)
    subject = await org_user(admin, "Export Subject")
    body = {"kind": "export", "subjects": [{"user_id": subject.id}], "reason": "ticket 3"}

    # Retrying forever (a store keeps failing): the data team cancels it.
    stuck = (await officer.post("/api/compliance/requests", json=body)).json()["items"][0][
        "request"
    ]
    faults.inject(stuck["id"], "archive", failures=1000)
    try:
        for _ in range(200):
            seen = (await officer.get(f"/api/compliance/requests/{stuck['id']}")).json()
            if seen["steps"][0]["attempts"] >= 2:
                break
            await asyncio.sleep(0.1)
        assert seen["status"] == "pending" and seen["steps"][0]["last_error"].startswith(
            "InjectedFault"
        )
        not_failed = await officer.post(f"/api/compliance/requests/{stuck['id']}/retry", json={})
        assert not_failed.status_code == 409
        cancelled = await officer.post(f"/api/compliance/requests/{stuck['id']}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    finally:
        faults.clear(stuck["id"])

    # A permanent failure ends in error; a retry produces the archive.
    failing = (await officer.post("/api/compliance/requests", json=body)).json()["items"][0]
    assert failing["outcome"] == "created"
    faults.inject(failing["request"]["id"], "archive", permanent=True)
    try:
        failed = await wait_request(officer, failing["request"]["id"], ("error", "complete"))
    finally:
        faults.clear(failing["request"]["id"])
    assert failed["status"] == "error" and failed["failed_step"] == "archive"
    retried = await officer.post(f"/api/compliance/requests/{failed['id']}/retry", json={})
    assert retried.status_code == 202, retried.text
    done = await wait_request(officer, failed["id"], ("complete", "error"))
    assert done["status"] == "complete" and done["steps"][0]["attempts"] == 2
    archive = await officer.get(f"/api/compliance/requests/{failed['id']}/archive")
    document, _ = read_archive(archive.content)
    assert validation_errors(document) == [] and document["subject"]["id"] == subject.id


async def test_cli_exports_erases_and_reports_through_the_api(client, api_url, tmp_path):
    admin = await signup(client, "CLI Admin")
    officer = await compliance_officer(admin)
    key = (await officer.post("/api/auth/api-keys", json={"name": "cli"})).json()["key"]
    subject = await org_user(admin, "CLI Subject")
    env = {"IAF_API_URL": api_url, "IAF_API_KEY": key}
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(cli_app, ["gdpr", *args], env=env)

    exported = await asyncio.to_thread(
        run, "export", subject.user["email"], "--reason", "ticket 9", "--out", str(tmp_path)
    )
    assert exported.exit_code == 0, exported.output
    archives = list(tmp_path.glob("export-*.zip"))
    assert len(archives) == 1
    document, _ = read_archive(archives[0].read_bytes())
    assert document["subject"]["email"] == subject.user["email"]

    erased = await asyncio.to_thread(
        run, "erase", subject.id, "--reason", "ticket 10", "--grace-days", "0"
    )
    assert erased.exit_code == 0, erased.output
    assert "complete" in erased.output
    listed = await asyncio.to_thread(run, "status", "--kind", "erasure", "--status", "complete")
    assert listed.exit_code == 0 and "erasure" in listed.output

    unknown = await asyncio.to_thread(run, "export", "ghost@example.com", "--reason", "ticket 11")
    assert unknown.exit_code == 1
    bad = await asyncio.to_thread(run, "retry", str(uuid.uuid4()))
    assert bad.exit_code == 2
    not_a_subject = await asyncio.to_thread(run, "erase", "not-an-id", "--reason", "x")
    assert not_a_subject.exit_code == 2
    no_key = await asyncio.to_thread(
        runner.invoke, cli_app, ["gdpr", "status"], env={"IAF_API_URL": api_url}
    )
    assert no_key.exit_code == 2


async def test_retry_while_temporal_is_unreachable_is_a_503_and_changes_nothing(
    client, settings, monkeypatch
):
    monkeypatch.setattr(settings, "gdpr_retry_initial_seconds", 0.2)
    admin = await signup(client, "Outage Admin")
    officer = await compliance_officer(admin)
    subject = await org_user(admin, "Outage Subject")
    body = {"kind": "export", "subjects": [{"user_id": subject.id}], "reason": "ticket 12"}
    request = (await officer.post("/api/compliance/requests", json=body)).json()["items"][0][
        "request"
    ]
    faults.inject(request["id"], "archive", permanent=True)
    try:
        failed = await wait_request(officer, request["id"], ("error", "complete"))
    finally:
        faults.clear(request["id"])
    assert failed["status"] == "error" and failed["failed_step"] == "archive"

    async def unreachable(*args: Any, **kwargs: Any) -> bool:
        raise RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b"")

    monkeypatch.setattr(workflow_calls, "start_gdpr_request", unreachable)
    refused = await officer.post(f"/api/compliance/requests/{request['id']}/retry", json={})
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "temporal_unavailable"
    assert refused.headers["retry-after"]
    unchanged = (await officer.get(f"/api/compliance/requests/{request['id']}")).json()
    assert (unchanged["status"], unchanged["failed_step"]) == ("error", "archive")

    monkeypatch.setattr(workflow_calls, "start_gdpr_request", real_start_request)
    retried = await officer.post(f"/api/compliance/requests/{request['id']}/retry", json={})
    assert retried.status_code == 202, retried.text
    done = await wait_request(officer, request["id"], ("complete", "error"))
    assert done["status"] == "complete"


async def test_no_export_of_a_subject_being_erased(client, settings):
    admin = await signup(client, "Erasing Admin")
    officer = await compliance_officer(admin)
    subject = await org_user(admin, "Being Erased")
    erasure = (
        await officer.post(
            "/api/compliance/requests",
            json={
                "kind": "erasure",
                "subjects": [{"user_id": subject.id}],
                "reason": "ticket 13",
                "grace_days": 0,
            },
        )
    ).json()["items"][0]["request"]
    # The erasure stops at its first step: it has begun, the account is not frozen yet.
    faults.inject(erasure["id"], "freeze", permanent=True)
    try:
        failed = await wait_request(officer, erasure["id"], ("error", "complete"))
    finally:
        faults.clear(erasure["id"])
    assert failed["status"] == "error" and failed["failed_step"] == "freeze"
    assert (await subject.get("/api/me")).status_code == 200

    body = {"kind": "export", "subjects": [{"user_id": subject.id}], "reason": "ticket 14"}
    refused = await officer.post("/api/compliance/requests", json=body)
    assert refused.status_code == 200, refused.text
    assert refused.json()["items"][0] == {
        "index": 0,
        "outcome": "erasure_in_progress",
        "request": None,
    }
    self_service = await subject.get("/api/user/data-export")
    assert self_service.status_code == 409
    assert self_service.json()["error"]["code"] == "erasure_in_progress"
