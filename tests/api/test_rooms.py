"""Room membership is the boundary: non-members see nothing, other orgs cannot be added."""

from __future__ import annotations

import uuid

from tests.helpers import colleague, signup


async def test_non_members_cannot_read_post_or_stream(client):
    alice = await signup(client)
    room = await alice.new_room("private")
    outsider = await signup(client, "Mallory Other Org")
    same_org = await colleague(alice, "Carol Not Invited")
    for person in (outsider, same_org):
        base = f"/api/chat/rooms/{room['id']}"
        assert (await person.get(base)).status_code == 404
        assert (await person.get(f"{base}/messages")).status_code == 404
        assert (await person.post(f"{base}/messages", json={"content": "hi"})).status_code == 404
        assert (await person.get(f"{base}/events")).status_code == 404
        assert (await person.get(f"{base}/members")).status_code == 404
    anonymous = await client.get(f"/api/chat/rooms/{room['id']}/messages")
    assert anonymous.status_code == 401
    assert (await client.get(f"/api/chat/rooms/{room['id']}/events")).status_code == 401
    messages = await alice.get(f"/api/chat/rooms/{room['id']}/messages")
    assert messages.json()["items"] == []


async def test_members_api_refuses_users_of_another_org(client):
    alice = await signup(client)
    room = await alice.new_room()
    stranger = await signup(client, "Eve Stranger")
    response = await alice.post(
        f"/api/chat/rooms/{room['id']}/members", json={"user_id": stranger.id}
    )
    assert response.status_code == 404
    members = await alice.get(f"/api/chat/rooms/{room['id']}/members")
    assert [m["user_id"] for m in members.json()["items"]] == [alice.id]
    unknown = await alice.post(
        f"/api/chat/rooms/{room['id']}/members", json={"user_id": str(uuid.uuid4())}
    )
    assert unknown.status_code == 404


async def test_only_owners_and_admins_manage_members(client):
    alice = await signup(client)
    bob = await colleague(alice)
    carol = await colleague(alice, "Carol")
    room = await alice.new_room(member_ids=[bob.id])
    refused = await bob.post(f"/api/chat/rooms/{room['id']}/members", json={"user_id": carol.id})
    assert refused.status_code == 403
    added = await alice.post(f"/api/chat/rooms/{room['id']}/members", json={"user_id": carol.id})
    assert added.status_code == 201
    again = await alice.post(f"/api/chat/rooms/{room['id']}/members", json={"user_id": carol.id})
    assert again.status_code == 200 and again.json()["added"] is False
    assert (await bob.delete(f"/api/chat/rooms/{room['id']}/members/{carol.id}")).status_code == 403
    assert (
        await alice.delete(f"/api/chat/rooms/{room['id']}/members/{carol.id}")
    ).status_code == 204
    assert (await carol.get(f"/api/chat/rooms/{room['id']}/messages")).status_code == 404


async def test_archived_rooms_are_read_only(client):
    alice = await signup(client)
    room = await alice.new_room()
    await alice.say(room["id"], "before archiving")
    archived = await alice.put(f"/api/chat/rooms/{room['id']}", json={"archived": True})
    assert archived.status_code == 200 and archived.json()["archived"] is True
    post = await alice.post(f"/api/chat/rooms/{room['id']}/messages", json={"content": "after"})
    assert post.status_code == 409
    assert post.json()["error"]["code"] == "room_archived"
    listed = await alice.get(f"/api/chat/rooms/{room['id']}/messages")
    assert [m["content"] for m in listed.json()["items"]] == ["before archiving"]
    rooms = await alice.get("/api/chat/rooms")
    assert room["id"] not in [r["id"] for r in rooms.json()["items"]]


async def test_room_list_shows_unread_counts(client):
    alice = await signup(client)
    bob = await colleague(alice)
    room = await alice.new_room(member_ids=[bob.id])
    first = await alice.say(room["id"], "one")
    await alice.say(room["id"], "two")
    rooms = {r["id"]: r for r in (await bob.get("/api/chat/rooms")).json()["items"]}
    assert rooms[room["id"]]["unread_count"] == 2
    read = await bob.post(f"/api/chat/rooms/{room['id']}/read", json={"message_id": first["id"]})
    assert read.status_code == 200
    rooms = {r["id"]: r for r in (await bob.get("/api/chat/rooms")).json()["items"]}
    assert rooms[room["id"]]["unread_count"] == 1
