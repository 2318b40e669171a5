"""Deleting or editing a message rewrites every stored copy of its text: its events (a member
replaying from Last-Event-ID 0, even one who joins later, never sees the old words), the
replies agents wrote to it, their events and deltas, and replies still being written."""

from __future__ import annotations

import uuid

from activities.gdpr_database import GdprDatabaseActivities
from iaf.workflow_calls import reply_workflow_id
from tests.agent_helpers import ingest, rows
from tests.agents.test_prompt_injection import ask, remember
from tests.gdpr_helpers import read_archive, wait_user_export
from tests.helpers import colleague, open_stream, signup
from tests.privacy_helpers import eventually, postgres_holding, replay, reply_over


def secret() -> str:
    return f"Quokka{uuid.uuid4().hex[:8]}"


async def test_a_deleted_message_and_the_reply_quoting_it_leave_no_copy(
    client, settings, database_url
):
    alice = await signup(client, "Alma Deleter")
    bob = await colleague(alice, "Boris Reader")
    room = await alice.new_room("copies", member_ids=[bob.id])
    word = secret()
    asked = await alice.say(room["id"], f"@architect how do we ship the {word} release safely?")
    reply_id = reply_workflow_id(asked["id"], "architect")
    assert await reply_over(database_url, reply_id) == "done"
    kept = await bob.say(room["id"], "bob's own words stay exactly as written")
    assert postgres_holding(database_url, [word])[word], "the reply quoted the question"

    deleted = await alice.delete(f"/api/chat/messages/{asked['id']}")
    assert deleted.status_code == 204
    assert postgres_holding(database_url, [word]) == {}

    carol = await colleague(alice, "Carla Latecomer")
    added = await alice.post(f"/api/chat/rooms/{room['id']}/members", json={"user_id": carol.id})
    assert added.status_code == 201
    events = await replay(client, carol, room["id"], database_url)
    assert all(word not in str(e.data) for e in events)
    kinds = [e.event for e in events]
    assert "agent.delta" not in kinds and kinds.count("message.delete") == 2  # question, reply
    listed = (await carol.get(f"/api/chat/rooms/{room['id']}/messages")).json()["items"]
    by_id = {m["id"]: m for m in listed}
    assert by_id[asked["id"]]["content"] == "" and by_id[asked["id"]]["deleted_at"]
    reply = [m for m in listed if m["type"] == "agent"]
    assert len(reply) == 1 and reply[0]["content"] == "" and reply[0]["deleted_at"]
    assert by_id[kept["id"]]["content"] == "bob's own words stay exactly as written"
    withdrawn = rows(
        database_url,
        "SELECT metadata ->> 'withdrawn', (SELECT context FROM agent_runs WHERE reply_id = %s)"
        " FROM messages WHERE id = %s",
        reply_id,
        reply[0]["id"],
    )
    assert withdrawn[0][0] == "source_deleted" and word not in str(withdrawn[0][1])


async def test_an_edit_leaves_only_the_new_text_and_withdraws_the_old_reply(
    client, settings, database_url
):
    alice = await signup(client, "Edda Editor")
    room = await alice.new_room("edits")
    old, new = secret(), secret()
    asked = await alice.say(room["id"], f"@architect plan the {old} migration please")
    reply_id = reply_workflow_id(asked["id"], "architect")
    assert await reply_over(database_url, reply_id) == "done"
    edited = await alice.put(
        f"/api/chat/messages/{asked['id']}", json={"content": f"plan the {new} migration"}
    )
    assert edited.status_code == 200 and edited.json()["content"] == f"plan the {new} migration"
    assert postgres_holding(database_url, [old]) == {}
    events = await replay(client, alice, room["id"], database_url)
    texts = [e.data.get("content") for e in events if e.event in ("message.new", "message.edit")]
    assert f"plan the {new} migration" in texts and all(old not in str(e.data) for e in events)


async def test_deleting_the_question_while_the_reply_streams_stores_no_answer(
    client, settings, database_url
):
    alice = await signup(client, "Stella Streamer")
    room = await alice.new_room("streaming")
    word = secret()
    async with open_stream(client, alice, room["id"]) as stream:
        asked = await alice.say(
            room["id"], f"@architect explain the {word} design at length [offline: slow=8]"
        )
        reply_id = reply_workflow_id(asked["id"], "architect")
        await stream.wait_for(
            lambda e: e.event == "agent.delta" and e.data["reply_id"] == reply_id, 60
        )
        assert (await alice.delete(f"/api/chat/messages/{asked['id']}")).status_code == 204
        await stream.wait_for(
            lambda e: e.event == "agent.error" and e.data["reply_id"] == reply_id, 60
        )
    assert await reply_over(database_url, reply_id) in ("cancelled", "error")
    assert (
        rows(
            database_url,
            "SELECT count(*) FROM messages WHERE type = 'agent' AND room_id = %s",
            room["id"],
        )[0][0]
        == 0
    )
    assert postgres_holding(database_url, [word]) == {}


async def test_an_export_written_while_a_message_changes_holds_only_the_new_text(
    client, settings, monkeypatch
):
    alice = await signup(client, "Xenia Exporter")
    room = await alice.new_room("export while editing")
    old, new = secret(), secret()
    message = await alice.say(room["id"], f"the {old} figures")
    real = GdprDatabaseActivities._document
    calls: list[int] = []

    async def gathered_then_edited(self, session, request):  # type: ignore[no-untyped-def]
        document = await real(self, session, request)
        calls.append(1)
        if len(calls) == 1:  # the author edits while the archive is being written
            edited = await alice.put(
                f"/api/chat/messages/{message['id']}", json={"content": f"the {new} figures"}
            )
            assert edited.status_code == 200
        return document

    monkeypatch.setattr(GdprDatabaseActivities, "_document", gathered_then_edited)
    assert (await alice.get("/api/user/data-export")).status_code == 202
    done = await wait_user_export(alice)
    assert done["status"] == "complete", done
    download = await client.get(done["download_url"].replace(settings.public_base_url, ""))
    document, files = read_archive(download.content)
    assert len(calls) == 2
    assert [m["content"] for m in document["sections"]["messages"]] == [f"the {new} figures"]
    assert old.encode() not in b"".join(files.values())


async def test_deleting_a_document_or_memory_takes_its_quotes_out_of_replies(client, database_url):
    alice = await signup(client, "Dora Sourcedeleter")
    room = await alice.new_room("just me", kind="direct")
    doc_word, memory_word = secret(), secret()
    await ingest(
        alice, "Runbook", f"Deploy the service with {doc_word} pipelines.", "room", room["id"]
    )
    await remember(alice, f"I deploy with {memory_word} tools")
    answer = await ask(alice, room["id"], database_url, "@architect how do we deploy the service?")
    assert doc_word in answer and memory_word in answer

    document = rows(
        database_url, "SELECT id FROM knowledge_documents WHERE room_id = %s", room["id"]
    )
    deleted = await alice.delete(f"/api/knowledge/documents/{document[0][0]}")
    assert deleted.status_code == 202
    memory = (await alice.get("/api/memories")).json()["items"][0]
    assert (await alice.delete(f"/api/memories/{memory['id']}")).status_code == 204

    async def holding() -> dict[str, list[str]]:  # the rows go once RemoveVectors ran
        return postgres_holding(database_url, [doc_word, memory_word])

    assert await eventually(holding, lambda held: held == {}) == {}
    listed = (await alice.get(f"/api/chat/rooms/{room['id']}/messages")).json()["items"]
    reply = [m for m in listed if m["type"] == "agent"][-1]["content"]
    assert "[erased]" in reply and reply.startswith("(offline model) As the Architect")


async def test_an_archive_holding_a_deleted_text_is_withdrawn_and_a_new_one_made(client, settings):
    alice = await signup(client, "Wanda Withdrawer")
    room = await alice.new_room("archive")
    word = secret()
    message = await alice.say(room["id"], f"the {word} numbers")
    assert (await alice.get("/api/user/data-export")).status_code == 202
    first = await wait_user_export(alice)
    assert first["status"] == "complete"
    link = first["download_url"].replace(settings.public_base_url, "")
    assert word.encode() in b"".join(read_archive((await client.get(link)).content)[1].values())

    assert (await alice.delete(f"/api/chat/messages/{message['id']}")).status_code == 204
    assert (await client.get(link)).status_code == 410
    assert not (settings.data_dir / "exports" / f"{first['id']}.zip").exists()
    again = await alice.get("/api/user/data-export")
    assert again.status_code == 202 and again.json()["id"] != first["id"]
    second = await wait_user_export(alice)
    fresh = await client.get(second["download_url"].replace(settings.public_base_url, ""))
    assert word.encode() not in b"".join(read_archive(fresh.content)[1].values())
