"""The subject's own endpoints: consents, export with expiring links, deletion with grace."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import UTC, datetime, timedelta

from iaf.db.repositories.gdpr_requests import LIVE_LINKS
from iaf.gdpr import faults
from iaf.gdpr.export_schema import validation_errors
from schemas.gdpr import ErasureResult
from tests.gdpr_helpers import PASSWORD, execute, read_archive, scalar, wait_user_export
from tests.helpers import colleague, signup


async def test_consents_default_to_refused_and_every_change_is_kept(client):
    alice = await signup(client, "Consent Alice")
    initial = await alice.get("/api/user/consents")
    assert initial.status_code == 200
    assert {c["purpose"]: c["granted"] for c in initial.json()["items"]} == {
        "analytics": False,
        "marketing": False,
        "ai_training": False,
    }
    assert initial.json()["history"] == []

    first = await alice.put(
        "/api/user/consents", json={"consents": {"analytics": True, "marketing": False}}
    )
    assert first.status_code == 200, first.text
    assert {c["purpose"]: c["granted"] for c in first.json()["items"]}["analytics"] is True
    same = await alice.put("/api/user/consents", json={"consents": {"analytics": True}})
    withdrawn = await alice.put("/api/user/consents", json={"consents": {"analytics": False}})
    history = withdrawn.json()["history"]
    assert same.status_code == 200
    # Newest first: the withdrawal, then the two first choices; repeating a choice adds nothing.
    assert [(h["purpose"], h["granted"]) for h in history] == [
        ("analytics", False),
        ("marketing", False),
        ("analytics", True),
    ]


async def test_consents_reject_unknown_purposes_and_anonymous_callers(client):
    alice = await signup(client, "Consent Checker")
    unknown = await alice.put("/api/user/consents", json={"consents": {"selling_data": True}})
    empty = await alice.put("/api/user/consents", json={"consents": {}})
    anonymous = await client.get("/api/user/consents")
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "invalid_request"
    assert empty.status_code == 422
    assert anonymous.status_code == 401


async def test_export_is_started_once_and_served_through_an_expiring_hashed_link(client, settings):
    alice = await signup(client, "Export Alice")
    bob = await colleague(alice, "Export Bob")
    room = await alice.new_room("export room", member_ids=[bob.id])
    await alice.say(room["id"], "alice's own words")
    await bob.say(room["id"], "bob's private thoughts")

    first = await alice.get("/api/user/data-export")
    again = await alice.get("/api/user/data-export")
    assert first.status_code == 202, first.text
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert first.json()["workflow_id"] == f"export-{first.json()['id']}"

    done = await wait_user_export(alice)
    assert done["status"] == "complete", done
    assert done["download_url"] and done["archive_available"]
    token = done["download_url"].rsplit("/", 1)[1]
    stored = await scalar(
        settings,
        "SELECT count(*) FROM export_download_tokens WHERE token_hash = :h",
        h=hashlib.sha256(token.encode()).hexdigest(),
    )
    raw_stored = await scalar(
        settings, "SELECT count(*) FROM export_download_tokens WHERE token_hash = :t", t=token
    )
    assert (stored, raw_stored) == (1, 0)

    download = await client.get(done["download_url"].replace(settings.public_base_url, ""))
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/zip"
    document, files = read_archive(download.content)
    assert validation_errors(document) == []
    assert [m["content"] for m in document["sections"]["messages"]] == ["alice's own words"]
    assert b"bob's private thoughts" not in b"".join(files.values())

    unknown = await client.get("/api/user/data-export/download/not-a-real-token")
    assert unknown.status_code == 404
    await execute(
        settings,
        "UPDATE export_download_tokens SET expires_at = :past WHERE token_hash = :h",
        past=datetime.now(UTC) - timedelta(seconds=1),
        h=hashlib.sha256(token.encode()).hexdigest(),
    )
    expired = await client.get(f"/api/user/data-export/download/{token}")
    assert expired.status_code == 410 and expired.json()["error"]["code"] == "link_expired"

    for _ in range(LIVE_LINKS + 1):  # every status call shows a new link; old ones are dropped
        latest = (await alice.get("/api/user/data-export/status")).json()
    kept = await scalar(
        settings,
        "SELECT count(*) FROM export_download_tokens WHERE request_id = :id",
        id=uuid.UUID(done["id"]),
    )
    assert kept == LIVE_LINKS
    assert (
        await client.get(latest["download_url"].replace(settings.public_base_url, ""))
    ).status_code == 200
    assert (await client.get(f"/api/user/data-export/download/{token}")).status_code == 404


async def test_export_status_before_any_request_is_404(client):
    alice = await signup(client, "Never Exported")
    status = await alice.get("/api/user/data-export/status")
    assert status.status_code == 404 and status.json()["error"]["code"] == "no_export"


async def test_delete_account_needs_the_password_and_can_be_cancelled_in_grace(
    client, settings, worker
):
    alice = await signup(client, "Leaving Alice")
    room = await alice.new_room("kept room")
    await alice.say(room["id"], "still here after cancelling")

    wrong = await alice.post("/api/user/delete-account", json={"password": "not the password"})
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "invalid_password"
    scheduled = await alice.post("/api/user/delete-account", json={"password": PASSWORD})
    assert scheduled.status_code == 202, scheduled.text
    request = scheduled.json()
    assert request["status"] == "in_grace"
    grace = datetime.fromisoformat(request["grace_until"]) - datetime.fromisoformat(
        request["created_at"]
    )
    assert abs(grace - timedelta(days=settings.erasure_grace_days)) < timedelta(seconds=5)
    due = datetime.fromisoformat(request["due_at"]) - datetime.fromisoformat(request["created_at"])
    assert timedelta(days=28) <= due <= timedelta(days=31)
    twice = await alice.post("/api/user/delete-account", json={"password": PASSWORD})
    assert twice.status_code == 200 and twice.json()["id"] == request["id"]

    cancelled = await alice.post("/api/user/delete-account/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    handle = worker.temporal.get_workflow_handle(request["workflow_id"], result_type=ErasureResult)
    result = await handle.result()
    assert result.status == "cancelled"
    assert (await alice.post("/api/user/delete-account/cancel")).status_code == 404

    me = await alice.get("/api/me")
    messages = await alice.get(f"/api/chat/rooms/{room['id']}/messages")
    assert me.status_code == 200
    assert [m["content"] for m in messages.json()["items"]] == ["still here after cancelling"]


async def test_erasure_workflow_is_found_by_request_id_and_kind(client, worker):
    alice = await signup(client, "Findable Alice")
    scheduled = await alice.post("/api/user/delete-account", json={"password": PASSWORD})
    request_id = scheduled.json()["id"]
    query = f'RequestId = "{request_id}" AND Kind = "erasure"'
    found: list[str] = []
    for _ in range(40):  # visibility is eventually consistent
        found = [e.id async for e in worker.temporal.list_workflows(query)]
        if found:
            break
        await asyncio.sleep(0.25)
    assert found == [f"erasure-{request_id}"]
    await alice.post("/api/user/delete-account/cancel")


async def test_a_failed_export_does_not_block_asking_again(client, settings, monkeypatch):
    monkeypatch.setattr(settings, "gdpr_retry_initial_seconds", 0.2)
    alice = await signup(client, "Unlucky Exporter")
    first = await alice.get("/api/user/data-export")
    assert first.status_code == 202
    faults.inject(first.json()["id"], "archive", permanent=True)
    try:
        failed = await wait_user_export(alice)
    finally:
        faults.clear(first.json()["id"])
    assert failed["status"] == "error"

    again = await alice.get("/api/user/data-export")
    assert again.status_code == 202, again.text
    assert again.json()["status"] == "pending"
    done = await wait_user_export(alice)
    assert done["status"] == "complete" and done["download_url"], done
    download = await client.get(done["download_url"].replace(settings.public_base_url, ""))
    document, _ = read_archive(download.content)
    assert validation_errors(document) == [] and document["subject"]["id"] == alice.id
