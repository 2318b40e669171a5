"""GET /api/events: a person's own stream of room-list changes, resumable with Last-Event-ID."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx

from tests.helpers import Person, SSEStream, colleague, signup


@contextlib.asynccontextmanager
async def my_events(
    client: httpx.AsyncClient, person: Person, last_event_id: int | None = None
) -> AsyncIterator[SSEStream]:
    headers = dict(person.headers)
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    url = "/api/events" if last_event_id is not None else "/api/events?after=0"
    response = await client.send(client.build_request("GET", url, headers=headers), stream=True)
    assert response.status_code == 200, (await response.aread()).decode()
    stream = SSEStream(response)
    stream.start()
    try:
        yield stream
    finally:
        await stream.close()


async def test_joins_messages_mentions_renames_and_removal_reach_the_person_live(client):
    bob = await signup(client, "Bob Owner")
    alice = await colleague(bob, "Alice Member")
    async with my_events(client, alice) as stream:
        room = await bob.new_room("Launch", member_ids=[alice.id])
        joined = await stream.wait_for(lambda e: e.event == "room.join")
        assert joined.id is not None and joined.data == {"room_id": room["id"], "role": "member"}

        message = await bob.say(room["id"], "status update, no text in the event")
        activity = await stream.wait_for(lambda e: e.event == "room.message")
        assert activity.id is None
        assert activity.data["message_id"] == message["id"]
        assert activity.data["sender_user_id"] == bob.id
        assert "content" not in activity.data

        await bob.say(room["id"], f"@{alice.user['handle']} please review")
        mention = await stream.wait_for(lambda e: e.event == "mention")
        assert mention.data["room_id"] == room["id"] and mention.id > joined.id

        renamed = await bob.put(f"/api/chat/rooms/{room['id']}", json={"name": "Launch v2"})
        assert renamed.status_code == 200
        await stream.wait_for(lambda e: e.event == "room.update")
        removed = await bob.delete(f"/api/chat/rooms/{room['id']}/members/{alice.id}")
        assert removed.status_code == 204
        await stream.wait_for(lambda e: e.event == "room.leave")
        # Left: the room's messages no longer reach this stream.
        before = len([e for e in stream.events if e.event == "room.message"])
        await bob.say(room["id"], "after alice left")
        other = await bob.new_room("Later", member_ids=[alice.id])
        await stream.wait_for(lambda e: e.event == "room.join" and e.data["room_id"] == other["id"])
        assert len([e for e in stream.events if e.event == "room.message"]) == before


async def test_a_reconnect_with_last_event_id_gets_exactly_the_missed_events(client):
    bob = await signup(client, "Bob Owner")
    alice = await colleague(bob, "Alice Member")
    async with my_events(client, alice) as stream:
        first = await bob.new_room("one", member_ids=[alice.id])
        seen = await stream.wait_for(lambda e: e.event == "room.join")
    second = await bob.new_room("two", member_ids=[alice.id])
    third = await bob.new_room("three", member_ids=[alice.id])
    await bob.delete(f"/api/chat/rooms/{first['id']}")
    async with my_events(client, alice, last_event_id=seen.id) as resumed:
        await resumed.wait_for(lambda e: e.event == "room.delete")
        durable = [(e.event, e.data["room_id"]) for e in resumed.events if e.id is not None]
    assert durable == [
        ("room.join", second["id"]),
        ("room.join", third["id"]),
        ("room.delete", first["id"]),
    ]
    ids = [e.id for e in resumed.events if e.id is not None]
    assert ids == sorted(ids) and ids[0] > seen.id


async def test_the_stream_refuses_bad_resume_points_and_strangers(client):
    alice = await signup(client)
    bad = await alice.get("/api/events", headers={"Last-Event-ID": "abc"})
    assert bad.status_code == 422
    assert (await client.get("/api/events")).status_code == 401
