"""Room membership is the boundary: non-members see nothing, other orgs cannot be added."""

from __future__ import annotations

import asyncio
import json
import uuid

from tests.helpers import colleague, open_stream, signup


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


def as_json(body: object) -> dict[str, object]:
    """ASCII-escaped JSON: lone surrogates travel as "\\ud800", as any client may send them."""
    return {"content": json.dumps(body), "headers": {"content-type": "application/json"}}


async def _roles(person, room_id):
    members = (await person.get(f"/api/chat/rooms/{room_id}/members")).json()["items"]
    return {m["user_id"]: m["role"] for m in members}


async def test_unstorable_room_text_is_422_and_changes_nothing(client):
    alice = await signup(client)
    for body in (
        {"name": "nul \u0000"},
        {"name": "lone \ud800"},
        {"name": "ok", "topic": "nul \u0000"},
        {"name": "ok", "topic": "\udc00"},
    ):
        response = await alice.post("/api/chat/rooms", **as_json(body))
        assert response.status_code == 422, (body, response.text)
        assert response.json()["error"]["code"] == "invalid_request"
    room = await alice.new_room("original", topic="first topic", auto_route=True)
    url = f"/api/chat/rooms/{room['id']}"
    for body in ({"name": "x\u0000"}, {"topic": "\ud800"}):
        response = await alice.put(url, **as_json(body))
        assert response.status_code == 422, (body, response.text)
    assert (await alice.get(url)).json()["name"] == "original"


async def test_null_in_a_room_update_is_422_and_changes_nothing(client):
    alice = await signup(client)
    room = await alice.new_room("original", topic="first topic", auto_route=True)
    url = f"/api/chat/rooms/{room['id']}"
    for body in (
        {"name": None},
        {"auto_route": None},
        {"topic": None},
        {"archived": None},
        {"name": "fine", "auto_route": None},
    ):
        response = await alice.put(url, **as_json(body))
        assert response.status_code == 422, (body, response.text)
        assert response.json()["error"]["code"] == "invalid_request"
    after = (await alice.get(url)).json()
    assert (after["name"], after["topic"], after["auto_route"], after["archived"]) == (
        "original",
        "first topic",
        True,
        False,
    )
    renamed = await alice.put(url, json={"name": "renamed"})
    assert renamed.status_code == 200 and renamed.json()["topic"] == "first topic"


async def test_owners_and_admins_change_roles_within_the_rules(client):
    alice = await signup(client)
    bob = await colleague(alice, "Bob")
    carol = await colleague(alice, "Carol")
    dave = await colleague(alice, "Dave")
    room = await alice.new_room(member_ids=[bob.id, carol.id, dave.id])
    members = f"/api/chat/rooms/{room['id']}/members"
    async with open_stream(client, alice, room["id"]) as stream:
        promoted = await alice.client.patch(
            f"{members}/{bob.id}", json={"role": "admin"}, headers=alice.headers
        )
        assert promoted.status_code == 200, promoted.text
        assert promoted.json() == {
            "id": bob.id,
            "user_id": bob.id,
            "role": "admin",
            "previous_role": "member",
            "changed": True,
        }
        event = await stream.wait_for(lambda e: e.event == "member.update")
        assert event.data == {"user_id": bob.id, "role": "admin", "previous_role": "member"}

    async def patch(person, target, role):
        return await client.patch(f"{members}/{target.id}", json={"role": role}, **_h(person))

    assert (await patch(carol, dave, "admin")).status_code == 403, "a member changes no role"
    refused = await patch(bob, carol, "owner")
    assert refused.status_code == 403, "an admin may not promote to owner"
    assert (await patch(bob, alice, "member")).status_code == 403, "nor demote the owner"
    assert (await patch(bob, carol, "admin")).status_code == 200, "an admin promotes to admin"
    same = await patch(bob, carol, "admin")
    assert same.status_code == 200 and same.json()["changed"] is False
    last = await patch(alice, alice, "admin")
    assert last.status_code == 409 and last.json()["error"]["code"] == "last_owner"
    assert (await patch(alice, dave, "owner")).status_code == 200
    assert (await patch(dave, alice, "member")).status_code == 200, "another owner demotes"
    assert (await patch(alice, bob, "member")).status_code == 403, "alice is no owner now"
    bad = await patch(dave, bob, "superuser")
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"
    stranger = await colleague(alice, "Not In Room")
    missing = await patch(dave, stranger, "admin")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_a_member"
    assert await _roles(alice, room["id"]) == {
        alice.id: "member",
        bob.id: "admin",
        carol.id: "admin",
        dave.id: "owner",
    }


def _h(person):
    return {"headers": person.headers}


async def test_adding_an_existing_member_reports_the_role_they_have(client):
    alice = await signup(client)
    bob = await colleague(alice)
    room = await alice.new_room(member_ids=[bob.id])
    again = await alice.post(
        f"/api/chat/rooms/{room['id']}/members", json={"user_id": bob.id, "role": "admin"}
    )
    assert again.status_code == 200
    assert again.json()["added"] is False and again.json()["role"] == "member"
    assert (await _roles(alice, room["id"]))[bob.id] == "member"


async def test_two_owners_demoting_each_other_at_once_leave_one_owner(client):
    alice = await signup(client)
    bob = await colleague(alice)
    room = await alice.new_room(member_ids=[bob.id])
    members = f"/api/chat/rooms/{room['id']}/members"
    made = await client.patch(f"{members}/{bob.id}", json={"role": "owner"}, **_h(alice))
    assert made.status_code == 200
    for _ in range(3):
        results = await asyncio.gather(
            client.patch(f"{members}/{bob.id}", json={"role": "member"}, **_h(alice)),
            client.patch(f"{members}/{alice.id}", json={"role": "member"}, **_h(bob)),
        )
        statuses = sorted(r.status_code for r in results)
        roles = await _roles(alice, room["id"])
        assert "owner" in roles.values(), (statuses, roles)
        assert statuses in ([200, 403], [200, 409]), [r.text for r in results]
        owner = alice if roles[alice.id] == "owner" else bob
        other = bob if owner is alice else alice
        restored = await client.patch(f"{members}/{other.id}", json={"role": "owner"}, **_h(owner))
        assert restored.status_code == 200


async def test_members_of_an_archived_room_cannot_change(client):
    alice = await signup(client)
    bob = await colleague(alice)
    carol = await colleague(alice, "Carol")
    room = await alice.new_room(member_ids=[bob.id])
    url = f"/api/chat/rooms/{room['id']}"
    assert (await alice.put(url, json={"archived": True})).status_code == 200
    attempts = [
        await alice.post(f"{url}/members", json={"user_id": carol.id}),
        await client.patch(f"{url}/members/{bob.id}", json={"role": "admin"}, **_h(alice)),
        await alice.delete(f"{url}/members/{bob.id}"),
        await bob.delete(f"{url}/members/{bob.id}"),
    ]
    for response in attempts:
        assert response.status_code == 409, response.text
        assert response.json()["error"]["code"] == "room_archived"
    assert await _roles(alice, room["id"]) == {alice.id: "owner", bob.id: "member"}
    assert (await alice.put(url, json={"archived": False})).status_code == 200
    assert (await alice.post(f"{url}/members", json={"user_id": carol.id})).status_code == 201


async def test_a_direct_room_holds_at_most_two_members(client):
    alice = await signup(client)
    bob = await colleague(alice)
    carol = await colleague(alice, "Carol")
    room = await alice.new_room("dm", kind="direct", member_ids=[bob.id])
    members = f"/api/chat/rooms/{room['id']}/members"
    full = await alice.post(members, json={"user_id": carol.id})
    assert full.status_code == 409 and full.json()["error"]["code"] == "direct_room_full"
    invite = await alice.post(
        f"/api/chat/rooms/{room['id']}/invite", json={"email": "guest@example.com"}
    )
    assert invite.status_code == 409 and invite.json()["error"]["code"] == "direct_room_full"
    again = await alice.post(members, json={"user_id": bob.id})
    assert again.status_code == 200, "an existing member is not a third one"
    assert set(await _roles(alice, room["id"])) == {alice.id, bob.id}
    assert (await bob.delete(f"{members}/{bob.id}")).status_code == 204
    assert (await alice.post(members, json={"user_id": carol.id})).status_code == 201
