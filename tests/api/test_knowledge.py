"""Knowledge, memory and reply endpoints: who may do what, and 4xx for every bad request."""

from __future__ import annotations

import json
import uuid

from tests.agent_helpers import ingest, rows, wait_document
from tests.helpers import colleague, signup


async def test_document_requests_are_validated(client, settings):
    alice = await signup(client)
    room = await alice.new_room()
    url = "/api/knowledge/documents"
    cases = [
        ({"title": "t", "content": "x", "scope": "room"}, 422, "invalid_request"),
        (
            {"title": "t", "content": "x", "scope": "org", "room_id": room["id"]},
            422,
            "invalid_request",
        ),
        ({"title": "t", "content": "x", "scope": "team"}, 422, "invalid_request"),
        ({"title": "", "content": "x", "scope": "org"}, 422, "invalid_request"),
        ({"title": "t", "content": "   ", "scope": "org"}, 422, "empty_content"),
        ({"title": "t", "content": "x", "scope": "org", "extra": 1}, 422, "invalid_request"),
        (
            {
                "title": "t",
                "content": "é" * (settings.knowledge_max_bytes // 2 + 1),
                "scope": "org",
            },
            413,
            "content_too_large",
        ),
    ]
    for body, status, code in cases:
        response = await alice.post(url, json=body)
        assert response.status_code == status, (body, response.text)
        assert response.json()["error"]["code"] == code
    response = await alice.post(
        url, content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert (
        await client.post(url, json={"title": "t", "content": "x", "scope": "org"})
    ).status_code == 401


async def test_room_documents_need_membership_and_stay_in_the_room(client):
    alice = await signup(client)
    bob = await colleague(alice)
    outsider = await signup(client, "Other Org Person")
    room = await alice.new_room()
    body = {
        "title": "Room notes",
        "content": "Only for this room.",
        "scope": "room",
        "room_id": room["id"],
    }
    assert (await bob.post("/api/knowledge/documents", json=body)).status_code == 404
    missing = {**body, "room_id": str(uuid.uuid4())}
    assert (await alice.post("/api/knowledge/documents", json=missing)).status_code == 404
    document = await ingest(alice, **{k: body[k] for k in ("title", "content", "scope", "room_id")})
    assert document["scope"] == "room" and document["room_id"] == room["id"]
    assert document["content"] == "Only for this room."
    for person in (bob, outsider):
        response = await person.get(f"/api/knowledge/documents/{document['id']}")
        assert response.status_code == 404
        listed = (await person.get("/api/knowledge/documents")).json()["items"]
        assert document["id"] not in {d["id"] for d in listed}
    listed = (await alice.get(f"/api/knowledge/documents?room_id={room['id']}")).json()["items"]
    assert [d["id"] for d in listed] == [document["id"]] and listed[0]["content"] is None
    assert (await bob.get(f"/api/knowledge/documents?room_id={room['id']}")).status_code == 404


async def test_org_documents_are_shared_with_the_org_only(client):
    alice = await signup(client)
    bob = await colleague(alice)
    outsider = await signup(client, "Other Org Person")
    document = await ingest(alice, "Handbook", "How we work.", "org")
    assert (await bob.get(f"/api/knowledge/documents/{document['id']}")).status_code == 200
    assert (await outsider.get(f"/api/knowledge/documents/{document['id']}")).status_code == 404
    ids = {d["id"] for d in (await bob.get("/api/knowledge/documents")).json()["items"]}
    assert document["id"] in ids
    assert (await bob.get(f"/api/knowledge/documents/{uuid.uuid4()}")).status_code == 404
    assert (await bob.get("/api/knowledge/documents/not-a-uuid")).status_code == 422


async def test_only_owners_and_admins_delete_documents(client):
    admin = await signup(client)  # the first user of an org is its admin
    bob = await colleague(admin)
    carol = await colleague(admin, "Carol Colleague")
    room = await bob.new_room(member_ids=[carol.id, admin.id])
    org_doc = await ingest(bob, "Bob's org doc", "Org knowledge.", "org")
    room_doc = await ingest(carol, "Carol's room doc", "Room knowledge.", "room", room["id"])
    assert (await carol.delete(f"/api/knowledge/documents/{org_doc['id']}")).status_code == 403
    assert (await admin.delete(f"/api/knowledge/documents/{org_doc['id']}")).status_code == 202
    # Bob owns the room (room admin) although Carol owns the document.
    assert (await admin.delete(f"/api/knowledge/documents/{room_doc['id']}")).status_code == 403
    assert (await bob.delete(f"/api/knowledge/documents/{room_doc['id']}")).status_code == 202


async def test_memories_are_private_and_bounded(client, settings):
    alice = await signup(client)
    bob = await colleague(alice)
    assert (await alice.post("/api/memories", json={"content": "  "})).status_code == 422
    big = "x" * (settings.memory_max_bytes + 1)
    response = await alice.post("/api/memories", json={"content": big})
    assert response.status_code == 413 and response.json()["error"]["code"] == "content_too_large"
    created = await alice.post("/api/memories", json={"content": "  Likes diagrams.  "})
    assert created.status_code == 201 and created.json()["content"] == "Likes diagrams."
    memory_id = created.json()["id"]
    assert memory_id in {m["id"] for m in (await alice.get("/api/memories")).json()["items"]}
    assert (await bob.get("/api/memories")).json()["items"] == []
    assert (await bob.delete(f"/api/memories/{memory_id}")).status_code == 404
    assert (await alice.delete(f"/api/memories/{memory_id}")).status_code == 204
    assert (await alice.delete(f"/api/memories/{memory_id}")).status_code == 404
    assert memory_id not in {m["id"] for m in (await alice.get("/api/memories")).json()["items"]}
    assert (await client.get("/api/memories")).status_code == 401


async def test_reply_endpoints_check_the_room(client):
    alice = await signup(client)
    outsider = await signup(client, "Not A Member")
    room = await alice.new_room()
    url = f"/api/chat/rooms/{room['id']}/replies/reply-1-architect"
    assert (await alice.get(url)).status_code == 404
    assert (await alice.post(f"{url}/cancel")).status_code == 404
    assert (await outsider.get(url)).status_code == 404
    assert (await client.post(f"{url}/cancel")).status_code == 401


def as_json(body: object) -> dict[str, object]:
    """ASCII-escaped JSON: lone surrogates travel as "\\ud800", as any client may send them."""
    return {"content": json.dumps(body), "headers": {"content-type": "application/json"}}


async def test_unstorable_text_in_documents_and_memories_is_422_and_stores_nothing(client):
    alice = await signup(client)
    for body in (
        {"title": "t\u0000", "content": "fine", "scope": "org"},
        {"title": "\ud800", "content": "fine", "scope": "org"},
        {"title": "t", "content": "nul \u0000 here", "scope": "org"},
        {"title": "t", "content": "lone \udfff", "scope": "org"},
    ):
        response = await alice.post("/api/knowledge/documents", **as_json(body))
        assert response.status_code == 422, (body, response.text)
        assert response.json()["error"]["code"] == "invalid_request"
    for content in ("nul \u0000", "lone \ud800"):
        response = await alice.post("/api/memories", **as_json({"content": content}))
        assert response.status_code == 422, (content, response.text)
        assert response.json()["error"]["code"] == "invalid_request"
    assert (await alice.get("/api/knowledge/documents")).json()["items"] == []
    assert (await alice.get("/api/memories")).json()["items"] == []


async def test_a_failed_document_can_be_retried_by_its_owner(client, database_url):
    alice = await signup(client)
    bob = await colleague(alice)
    document = await ingest(alice, "Runbook", "Restart the API with make run.", "org")
    url = f"/api/knowledge/documents/{document['id']}/retry"
    not_failed = await alice.post(url)
    assert not_failed.status_code == 409 and not_failed.json()["error"]["code"] == "not_failed"
    rows(
        database_url,
        "UPDATE knowledge_documents SET status = 'failed', error = 'EmbeddingDown'"
        " WHERE id = %s RETURNING id",
        document["id"],
    )
    assert (await bob.post(url)).status_code == 403
    retried = await alice.post(url)
    assert retried.status_code == 202 and retried.json()["status"] == "pending"
    ready = await wait_document(alice, document["id"], {"ready"})
    assert ready["error"] is None and ready["chunk_count"] == document["chunk_count"]
