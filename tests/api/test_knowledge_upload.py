"""Knowledge files: .md, .txt and .pdf uploads become documents; their type is judged by
their bytes, and a refused file stores nothing."""

from __future__ import annotations

from tests.agent_helpers import wait_document
from tests.helpers import signup
from tests.pdf_fixture import pdf_with_text

UPLOAD = "/api/knowledge/documents/upload"


async def test_md_txt_and_pdf_files_become_ready_documents(client):
    alice = await signup(client)
    room = await alice.new_room("docs")
    files = {
        "notes.md": b"# Release notes\n\nThe launch codename is **BLUEFIN**.",
        "plain.txt": "Caf\u00e9 opening hours: 9 to 5.".encode(),
        "Handbook.pdf": pdf_with_text("The moon base code is ZEPHYR-42."),
    }
    for name, data in files.items():
        in_room = {"scope": "room", "room_id": room["id"]}
        scope = {"scope": "org"} if name == "plain.txt" else in_room
        response = await alice.post(UPLOAD, files={"file": (name, data)}, data=scope)
        assert response.status_code == 202, response.text
        document = response.json()
        ready = await wait_document(alice, document["id"], {"ready"})
        assert ready["chunk_count"] >= 1
    listed = (await alice.get(f"/api/knowledge/documents?room_id={room['id']}")).json()["items"]
    assert {d["title"] for d in listed} == {"notes", "Handbook"}
    org = (await alice.get("/api/knowledge/documents")).json()["items"]
    assert "plain" in {d["title"] for d in org}
    pdf = next(d for d in listed if d["title"] == "Handbook")
    content = (await alice.get(f"/api/knowledge/documents/{pdf['id']}")).json()["content"]
    assert "ZEPHYR-42" in content


async def test_a_file_whose_bytes_contradict_its_name_is_refused_and_nothing_stored(client):
    alice = await signup(client)
    cases = [
        ("fake.pdf", b"just text, not a PDF", 415, "type_mismatch"),
        ("secret.txt", pdf_with_text("hidden"), 415, "type_mismatch"),
        ("image.md", b"\x89PNG\r\n\x1a\n\x00\x00binary", 415, "not_text"),
        ("latin1.txt", "caf\u00e9".encode("latin-1"), 415, "not_text"),
        ("program.exe", b"MZ...", 415, "unsupported_type"),
        ("broken.pdf", b"%PDF-1.4\nnot really", 422, "pdf_unreadable"),
        ("empty.md", b"  \n", 422, "empty_content"),
    ]
    for name, data, status, code in cases:
        response = await alice.post(UPLOAD, files={"file": (name, data)}, data={"scope": "org"})
        assert response.status_code == status, (name, response.text)
        assert response.json()["error"]["code"] == code, name
    assert (await alice.get("/api/knowledge/documents")).json()["items"] == []


async def test_upload_limits_and_scope_checks(client, settings):
    alice, mallory = await signup(client), await signup(client, "Mallory")
    room = await alice.new_room("private")
    big = b"a" * (settings.knowledge_file_max_bytes + 1)
    response = await alice.post(UPLOAD, files={"file": ("big.txt", big)}, data={"scope": "org"})
    assert response.status_code == 413 and response.json()["error"]["code"] == "file_too_large"
    outsider = await mallory.post(
        UPLOAD,
        files={"file": ("x.md", b"hello")},
        data={"scope": "room", "room_id": room["id"]},
    )
    assert outsider.status_code == 404
    missing_room = await alice.post(UPLOAD, files={"file": ("x.md", b"hi")}, data={"scope": "room"})
    assert missing_room.status_code == 422
    no_file = await alice.post(UPLOAD, data={"scope": "org"})
    assert no_file.status_code == 422
    anonymous = await client.post(UPLOAD, files={"file": ("x.md", b"hi")}, data={"scope": "org"})
    assert anonymous.status_code == 401
