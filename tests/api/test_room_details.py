"""Room details: muting, per-message read receipts in direct rooms, the kinds' differences,
and room.update when a setting changes."""

from __future__ import annotations

import asyncio

from tests.agent_helpers import rows
from tests.helpers import colleague, open_my_events, open_stream, signup


async def _room(person, room_id: str) -> dict:
    listed = await person.get("/api/chat/rooms")
    return next(r for r in listed.json()["items"] if r["id"] == room_id)


async def test_a_muted_room_shows_no_mention_badge_and_sends_no_mention_event(client):
    alice = await signup(client, "Alice Owner")
    bob = await colleague(alice, "Bob Muted")
    room = await alice.new_room("Noisy", member_ids=[bob.id])
    other = await alice.new_room("Quiet", member_ids=[bob.id])
    url = f"/api/chat/rooms/{room['id']}/membership"
    async with open_my_events(client, bob) as stream:
        muted = await bob.client.patch(url, json={"is_muted": True}, headers=bob.headers)
        assert muted.status_code == 200, muted.text
        assert muted.json() == {
            "room_id": room["id"],
            "user_id": bob.id,
            "role": "member",
            "is_muted": True,
            "last_read_message_id": None,
        }
        # The person's other sessions hear of it.
        await stream.wait_for(
            lambda e: e.event == "room.update" and e.data["room_id"] == room["id"]
        )
        handle = bob.user["handle"]
        noisy = await alice.say(room["id"], f"@{handle} in the muted room, and @all too")
        await alice.say(other["id"], f"@{handle} in the other room")
        mention = await stream.wait_for(lambda e: e.event == "mention")
        assert mention.data["room_id"] == other["id"]
        # The muted room's mention was recorded (the message knows it) but reached no one.
        await _until(lambda: _mentions_recorded(client, alice, room["id"], noisy["id"]))
        assert not [
            e for e in stream.events if e.event == "mention" and e.data["room_id"] == room["id"]
        ]

    listed = await _room(bob, room["id"])
    assert listed["is_muted"] is True and listed["unread_mentions"] == 0
    assert listed["unread_count"] == 1, "messages still count as unread"
    assert (await _room(bob, other["id"]))["unread_mentions"] == 1
    assert (await bob.get(f"/api/chat/rooms/{room['id']}")).json()["is_muted"] is True
    assert (await _room(alice, room["id"]))["is_muted"] is False, "muting is per member"

    unmuted = await bob.client.patch(url, json={"is_muted": False}, headers=bob.headers)
    assert unmuted.json()["is_muted"] is False
    assert (await _room(bob, room["id"]))["unread_mentions"] == 1


async def test_muting_refuses_bad_input_and_strangers(client):
    alice = await signup(client)
    stranger = await signup(client, "Stranger")
    room = await alice.new_room()
    url = f"/api/chat/rooms/{room['id']}/membership"
    for body in ({"is_muted": "loud"}, {}, {"is_muted": True, "role": "owner"}, {"is_muted": None}):
        response = await alice.client.patch(url, json=body, headers=alice.headers)
        assert response.status_code == 422, body
    refused = await stranger.client.patch(url, json={"is_muted": True}, headers=stranger.headers)
    assert refused.status_code == 404
    assert (await alice.get(f"/api/chat/rooms/{room['id']}")).json()["is_muted"] is False


async def test_direct_rooms_keep_read_receipts_per_message(client, database_url):
    alice = await signup(client, "Alice Direct")
    bob = await colleague(alice, "Bob Direct")
    room = await alice.new_room("Bob Direct", kind="direct", member_ids=[bob.id])
    first = await alice.say(room["id"], "first")
    second = await alice.say(room["id"], "second")
    own = await bob.say(room["id"], "bob's own")
    async with open_stream(client, alice, room["id"]) as stream:
        read = await bob.post(f"/api/chat/rooms/{room['id']}/read", json={"message_id": own["id"]})
        assert read.status_code == 200
        receipt = await stream.wait_for(lambda e: e.event == "message.read")
    assert receipt.id is not None, "stored, so a reconnecting client gets it"
    assert receipt.data["user_id"] == bob.id
    assert receipt.data["message_ids"] == [first["id"], second["id"]]

    page = (await alice.get(f"/api/chat/rooms/{room['id']}/messages")).json()["items"]
    by_id = {m["id"]: m for m in page}
    for message in (first, second):
        (only,) = by_id[message["id"]]["read_by"]
        assert only["user_id"] == bob.id and only["read_at"]
    assert by_id[own["id"]]["read_by"] == [], "Alice has not read Bob's message"
    # Reading again (or going backwards) adds nothing.
    again = await bob.post(f"/api/chat/rooms/{room['id']}/read", json={"message_id": first["id"]})
    assert again.json()["last_read_message_id"] == own["id"]
    count = rows(
        database_url, "SELECT count(*) FROM message_read_receipts WHERE room_id = %s", room["id"]
    )
    assert count[0][0] == 2


async def test_group_rooms_have_read_markers_but_no_receipts(client, database_url):
    alice = await signup(client)
    bob = await colleague(alice)
    room = await alice.new_room("group", member_ids=[bob.id])
    message = await alice.say(room["id"], "hello group")
    read = await bob.post(f"/api/chat/rooms/{room['id']}/read", json={"message_id": message["id"]})
    assert read.status_code == 200
    page = (await alice.get(f"/api/chat/rooms/{room['id']}/messages")).json()["items"]
    assert page[-1]["read_by"] is None
    assert not rows(
        database_url, "SELECT 1 FROM message_read_receipts WHERE room_id = %s", room["id"]
    )
    assert not rows(
        database_url,
        "SELECT 1 FROM room_events WHERE room_id = %s AND type = 'message.read'",
        room["id"],
    )


async def test_one_direct_room_per_pair_and_no_roles_in_it(client):
    alice = await signup(client)
    bob = await colleague(alice, "Bob Pair")
    carol = await colleague(alice, "Carol Other")
    first = await alice.new_room("Bob Pair", kind="direct", member_ids=[bob.id])
    again = await alice.post(
        "/api/chat/rooms", json={"name": "again", "kind": "direct", "member_ids": [bob.id]}
    )
    assert again.status_code == 200 and again.json()["id"] == first["id"]
    from_bob = await bob.post(
        "/api/chat/rooms", json={"name": "Alice", "kind": "direct", "member_ids": [alice.id]}
    )
    assert from_bob.status_code == 200 and from_bob.json()["id"] == first["id"]
    assert from_bob.json()["my_role"] == "member"
    with_carol = await alice.new_room("Carol", kind="direct", member_ids=[carol.id])
    assert with_carol["id"] != first["id"]
    # Two at once still make one room.
    dave = await colleague(alice, "Dave Race")
    body = {"name": "Dave", "kind": "direct", "member_ids": [dave.id]}
    raced = await asyncio.gather(*(alice.post("/api/chat/rooms", json=body) for _ in range(4)))
    assert len({r.json()["id"] for r in raced}) == 1
    assert sorted(r.status_code for r in raced) == [200, 200, 200, 201]

    role = await alice.client.patch(
        f"/api/chat/rooms/{first['id']}/members/{bob.id}",
        json={"role": "admin"},
        headers=alice.headers,
    )
    assert role.status_code == 409 and role.json()["error"]["code"] == "direct_room_roles"


async def test_project_rooms_auto_route_and_agents_read_the_brief(client):
    alice = await signup(client)
    group = await alice.new_room("group")
    assert group["auto_route"] is False
    chosen = await alice.new_room("quiet project", kind="project", auto_route=False)
    assert chosen["auto_route"] is False
    project = await alice.new_room(
        "Billing v2", kind="project", topic="Ship invoicing for the Lyon office by June"
    )
    assert project["auto_route"] is True and project["kind"] == "project"
    async with open_stream(client, alice, project["id"]) as stream:
        # No mention: the project room routes the question to the PM by its keywords.
        await alice.say(project["id"], "What should the roadmap and milestones be?")
        reply = await stream.wait_for(
            lambda e: e.event == "message.new" and e.data.get("sender_agent_id") == "pm", 90
        )
    assert (
        'Working from the project brief: "Ship invoicing for the Lyon office by June"'
        in (reply.data["content"])
    )


async def test_a_settings_change_is_a_room_update_event(client):
    alice = await signup(client)
    room = await alice.new_room("settings")
    async with open_stream(client, alice, room["id"]) as stream:
        changed = await alice.put(f"/api/chat/rooms/{room['id']}", json={"auto_route": True})
        assert changed.status_code == 200 and changed.json()["auto_route"] is True
        update = await stream.wait_for(lambda e: e.event == "room.update")
    assert update.data == {"fields": ["auto_route"]}


async def _mentions_recorded(client, person, room_id: str, message_id: int) -> bool:
    page = (await person.get(f"/api/chat/rooms/{room_id}/messages")).json()["items"]
    return any(m["id"] == message_id and m["mentions"] for m in page)


async def _until(check, within: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.1)
