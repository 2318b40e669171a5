"""Attachments: upload (type by content, limits), post with a message, who reads them, delete,
add to knowledge in one call, the janitor, and the GDPR export and erasure of a person's files."""

from __future__ import annotations

import asyncio
import uuid

import psycopg

from iaf.files.store import LocalFileStore, user_prefix
from tests.file_fixtures import pdf, png
from tests.gdpr_helpers import (
    compliance_officer,
    org_user,
    read_archive,
    wait_request,
    wait_user_export,
)
from tests.helpers import colleague, signup


async def _upload(person, room_id, name, data, status=201):
    response = await person.post(
        f"/api/chat/rooms/{room_id}/attachments", files={"file": (name, data, "text/plain")}
    )
    assert response.status_code == status, response.text
    return response.json()


def _store(settings):
    return LocalFileStore(settings.data_dir / "files")


async def _eventually(check, patience=30.0):
    deadline = asyncio.get_running_loop().time() + patience
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.2)


async def test_type_is_judged_by_content_and_limits_hold(client, settings):
    alice = await signup(client)
    room = await alice.new_room()
    image = await _upload(alice, room["id"], "holiday.txt", png(5, 7))
    assert (image["kind"], image["content_type"]) == ("image", "image/png")
    assert (image["width"], image["height"], image["message_id"]) == (5, 7, None)
    document = await _upload(alice, room["id"], "scan.png", pdf("a report"))
    assert document["content_type"] == "application/pdf"
    notes = await _upload(alice, room["id"], "../../notes.md", "# Notes\nété".encode())
    larger_than_a_json_body = await _upload(alice, room["id"], "log.txt", b"line\n" * 400_000)
    assert larger_than_a_json_body["size_bytes"] == 2_000_000
    assert notes["content_type"].startswith("text/markdown") and notes["name"] == "notes.md"

    refusals = [
        ("archive.zip", b"PK\x03\x04" + b"\x00" * 50, 415, "unsupported_type"),
        ("broken.png", b"\x89PNG\r\n\x1a\n" + b"garbage", 415, "unreadable_image"),
        ("fake.pdf", b"%PDF-1.4 nothing else", 415, "unreadable_pdf"),
        ("latin1.txt", "café".encode("latin-1"), 415, "unsupported_type"),
        ("empty.txt", b"", 422, "empty_file"),
        ("big.txt", b"a" * (settings.attachment_max_bytes + 1), 413, None),
    ]
    for name, data, status, code in refusals:
        body = await _upload(alice, room["id"], name, data, status)
        if code:
            assert body["error"]["code"] == code, name
    stranger = await signup(client, "Stranger")
    refused = await _upload(stranger, room["id"], "x.txt", b"hello", 404)
    assert refused["error"]["code"] == "room_not_found"
    with psycopg.connect(settings.database_url) as connection:
        count = connection.execute(
            "SELECT count(*) FROM attachments WHERE room_id = %s", (room["id"],)
        ).fetchone()[0]
    assert count == 4


async def test_posted_files_are_read_by_room_members_only(client, settings):
    alice = await signup(client)
    bob = await colleague(alice)
    carol = await colleague(alice, "Carol Outside")
    room = await alice.new_room("files", member_ids=[bob.id])
    upload = await _upload(alice, room["id"], "pic.png", png())
    url = f"/api/chat/attachments/{upload['id']}"
    assert (await alice.get(url)).status_code == 200
    assert (await bob.get(url)).status_code == 404  # not posted yet: the uploader's only

    posted = await alice.post(
        f"/api/chat/rooms/{room['id']}/messages",
        json={"content": "", "attachment_ids": [upload["id"]], "client_msg_id": "with-file"},
    )
    assert posted.status_code == 201, posted.text
    message = posted.json()
    assert [a["id"] for a in message["attachments"]] == [upload["id"]]
    listed = await bob.get(f"/api/chat/rooms/{room['id']}/messages")
    assert listed.json()["items"][-1]["attachments"][0]["name"] == "pic.png"
    download = await bob.get(url)
    assert download.status_code == 200 and download.content == png()
    assert download.headers["content-type"] == "image/png"
    assert download.headers["x-content-type-options"] == "nosniff"
    assert (await carol.get(url)).status_code == 404

    retried = await alice.post(
        f"/api/chat/rooms/{room['id']}/messages",
        json={"content": "", "attachment_ids": [upload["id"]], "client_msg_id": "with-file"},
    )
    assert retried.status_code == 200 and retried.json()["id"] == message["id"]
    again = await alice.post(
        f"/api/chat/rooms/{room['id']}/messages",
        json={"content": "again", "attachment_ids": [upload["id"]]},
    )
    assert again.status_code == 409
    bobs_room = await bob.new_room()
    for ids, status in (([str(uuid.uuid4())], 422), ([upload["id"]], 422)):
        response = await bob.post(
            f"/api/chat/rooms/{bobs_room['id']}/messages",
            json={"content": "x", "attachment_ids": ids},
        )
        assert response.status_code == status, response.text
    assert (
        await alice.post(f"/api/chat/rooms/{room['id']}/messages", json={"content": ""})
    ).status_code == 422


async def test_deleting_the_message_removes_its_files_everywhere(client, settings):
    alice = await signup(client)
    room = await alice.new_room()
    upload = await _upload(alice, room["id"], "secret-plan.txt", b"the plan")
    message = await alice.say(room["id"], "see file", attachment_ids=[upload["id"]])
    key = f"{user_prefix(alice.id)}{upload['id']}"
    assert _store(settings).get(key) == b"the plan"

    assert (await alice.delete(f"/api/chat/messages/{message['id']}")).status_code == 204
    assert (await alice.get(f"/api/chat/attachments/{upload['id']}")).status_code == 404
    assert key not in _store(settings).keys(user_prefix(alice.id))
    with psycopg.connect(settings.database_url) as connection:
        copies = connection.execute(
            "SELECT count(*) FROM room_events WHERE room_id = %s AND data::text LIKE %s",
            (room["id"], "%secret-plan%"),
        ).fetchone()[0]
        rows = connection.execute(
            "SELECT count(*) FROM attachments WHERE id = %s", (upload["id"],)
        ).fetchone()[0]
    assert (copies, rows) == (0, 0)


async def test_unposted_uploads_are_discarded_or_left_to_the_janitor(client, settings):
    alice = await signup(client)
    room = await alice.new_room()
    kept = await _upload(alice, room["id"], "draft.txt", b"draft")
    discarded = await _upload(alice, room["id"], "oops.txt", b"oops")
    assert (await alice.delete(f"/api/chat/attachments/{discarded['id']}")).status_code == 204
    assert (await alice.get(f"/api/chat/attachments/{discarded['id']}")).status_code == 404
    with psycopg.connect(settings.database_url, autocommit=True) as connection:
        connection.execute(
            "UPDATE attachments SET created_at = now() - interval '3 days' WHERE id = %s",
            (kept["id"],),
        )

    async def janitor_done() -> bool:
        with psycopg.connect(settings.database_url) as connection:
            row = connection.execute(
                "SELECT 1 FROM attachments WHERE id = %s", (kept["id"],)
            ).fetchone()
        return row is None

    await _eventually(janitor_done)
    assert _store(settings).keys(user_prefix(alice.id)) == []


async def test_a_text_or_pdf_file_joins_the_room_knowledge_in_one_call(client):
    alice = await signup(client)
    room = await alice.new_room()
    paper = await _upload(alice, room["id"], "runbook.pdf", pdf("Restart the zebrafish service"))
    picture = await _upload(alice, room["id"], "pic.png", png())
    await alice.say(room["id"], "docs", attachment_ids=[paper["id"], picture["id"]])

    added = await alice.post(f"/api/chat/attachments/{paper['id']}/knowledge")
    assert added.status_code == 202, added.text
    document = added.json()["document"]
    assert document["scope"] == "room" and document["room_id"] == room["id"]
    assert added.json()["attachment"]["knowledge_document_id"] == document["id"]

    async def ready() -> bool:
        found = await alice.get(f"/api/knowledge/documents/{document['id']}")
        return found.json()["status"] == "ready"

    await _eventually(ready, 90)
    found = await alice.get(f"/api/knowledge/documents/{document['id']}")
    assert "zebrafish" in found.json()["content"]
    again = await alice.post(f"/api/chat/attachments/{paper['id']}/knowledge")
    assert again.status_code == 409
    image = await alice.post(f"/api/chat/attachments/{picture['id']}/knowledge")
    assert image.status_code == 422 and image.json()["error"]["code"] == "not_knowledge"


async def test_export_carries_the_files_and_erasure_removes_them(client, settings):
    admin = await signup(client, "Files Admin")
    officer = await compliance_officer(admin)
    subject = await org_user(admin, "Files Subject")
    room = await admin.new_room("shared files", member_ids=[subject.id])
    upload = await _upload(subject, room["id"], "cv.pdf", pdf("curriculum vitae"))
    await subject.say(room["id"], "my cv", attachment_ids=[upload["id"]])
    await _upload(subject, room["id"], "never-posted.txt", b"draft")

    assert (await subject.get("/api/user/data-export")).status_code == 202
    done = await wait_user_export(subject)
    archive = await client.get(done["download_url"].replace(settings.public_base_url, ""))
    document, files = read_archive(archive.content)
    exported = {a["name"]: a for a in document["sections"]["attachments"]}
    assert set(exported) == {"cv.pdf", "never-posted.txt"}
    assert files[exported["cv.pdf"]["file"]] == pdf("curriculum vitae")

    erasure = await officer.post(
        "/api/compliance/requests",
        json={
            "kind": "erasure",
            "subjects": [{"user_id": subject.id}],
            "reason": "test",
            "grace_days": 0,
        },
    )
    assert erasure.status_code == 201, erasure.text
    request_id = erasure.json()["items"][0]["request"]["id"]
    finished = await wait_request(officer, request_id, ("complete", "error"), patience=180)
    assert finished["status"] == "complete", finished
    assert _store(settings).keys(user_prefix(subject.id)) == []
    listed = await admin.get(f"/api/chat/rooms/{room['id']}/messages")
    assert all(m["attachments"] == [] for m in listed.json()["items"])
    assert (await admin.get(f"/api/chat/attachments/{upload['id']}")).status_code == 404
