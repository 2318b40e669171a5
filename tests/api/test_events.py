"""The live room stream: delivery, exact resume with Last-Event-ID, and fan-out across processes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import httpx

from iaf.devstack.temporal import wait_for_port
from tests.helpers import colleague, free_port, open_stream, signup


async def test_member_receives_message_new_as_the_messages_api_returns_it(client):
    alice = await signup(client)
    bob = await colleague(alice)
    room = await alice.new_room(member_ids=[bob.id])
    async with open_stream(client, bob, room["id"]) as stream:
        posted = await alice.say(room["id"], "hello bob")
        event = await stream.wait_for(lambda e: e.event == "message.new")
    listed = (await bob.get(f"/api/chat/rooms/{room['id']}/messages")).json()["items"][0]
    assert event.data == listed == posted
    assert event.id is not None


async def test_reconnect_with_last_event_id_gets_exactly_the_missed_events(client):
    alice = await signup(client)
    bob = await colleague(alice)
    room = await alice.new_room(member_ids=[bob.id])
    async with open_stream(client, bob, room["id"]) as stream:
        await alice.say(room["id"], "seen-1")
        seen = await stream.wait_for(lambda e: e.data.get("content") == "seen-1")
    missed = [await alice.say(room["id"], f"missed-{i}") for i in range(5)]
    edited = await alice.put(
        f"/api/chat/messages/{missed[0]['id']}", json={"content": "missed-0 edited"}
    )
    assert edited.status_code == 200
    async with open_stream(client, bob, room["id"], last_event_id=seen.id) as stream:
        await alice.say(room["id"], "live-after")
        await stream.wait_for(lambda e: e.data.get("content") == "live-after")
        got = [e for e in stream.events if e.id is not None]  # stored events only
    ids = [e.id for e in got]
    assert ids == sorted(ids) and len(ids) == len(set(ids)), "in order, none twice"
    assert all(i > seen.id for i in ids), "nothing already seen is replayed"
    assert [e.event for e in got] == ["message.new"] * 5 + ["message.edit", "message.new"]
    # The replayed message.new says what the message says now: the text before the edit
    # is stored nowhere any more (docs/privacy.md).
    assert [e.data["content"] for e in got[:5]] == ["missed-0 edited"] + [
        m["content"] for m in missed[1:]
    ]
    assert got[0].data["edited_at"] is not None and got[1].data["edited_at"] is None


async def test_typing_is_live_but_never_replayed(client):
    alice = await signup(client)
    bob = await colleague(alice)
    room = await alice.new_room(member_ids=[bob.id])
    async with open_stream(client, bob, room["id"]) as stream:
        assert (await alice.post(f"/api/chat/rooms/{room['id']}/typing")).status_code == 202
        typing = await stream.wait_for(lambda e: e.event == "typing")
        assert typing.id is None and typing.data["user_id"] == alice.id
    async with open_stream(client, bob, room["id"], last_event_id=0) as stream:
        await alice.say(room["id"], "marker")
        await stream.wait_for(lambda e: e.data.get("content") == "marker")
        assert "typing" not in [e.event for e in stream.events]


async def test_presence_is_announced_when_a_member_connects_and_leaves(client):
    alice = await signup(client)
    bob = await colleague(alice)
    room = await alice.new_room(member_ids=[bob.id])
    async with open_stream(client, alice, room["id"]) as watcher:
        async with open_stream(client, bob, room["id"]):
            online = await watcher.wait_for(
                lambda e: e.event == "presence" and e.data["user_id"] == bob.id
            )
            assert online.data["status"] == "online" and online.id is None
        offline = await watcher.wait_for(
            lambda e: (
                e.event == "presence"
                and e.data["user_id"] == bob.id
                and e.data["status"] == "offline"
            )
        )
        assert offline.id is None


async def test_removed_member_stream_ends(client):
    alice = await signup(client)
    bob = await colleague(alice)
    room = await alice.new_room(member_ids=[bob.id])
    async with open_stream(client, bob, room["id"]) as stream:
        assert (
            await alice.delete(f"/api/chat/rooms/{room['id']}/members/{bob.id}")
        ).status_code == 204
        await stream.wait_for(lambda e: e.event == "member.remove")
        await alice.say(room["id"], "after removal")
        await asyncio.sleep(0.5)
        assert "message.new" not in [e.event for e in stream.events]


async def test_invalid_last_event_id_is_a_4xx(client):
    alice = await signup(client)
    room = await alice.new_room()
    response = await alice.get(
        f"/api/chat/rooms/{room['id']}/events", headers={"Last-Event-ID": "abc"}
    )
    assert response.status_code == 422


async def test_sse_client_on_a_second_api_process_gets_messages_posted_through_the_first(
    client, settings
):
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "TEMPORAL_ADDRESS": settings.temporal_address,
        "TEMPORAL_TASK_QUEUE": settings.temporal_task_queue,
        "JWT_SECRET": settings.secret("jwt_secret"),
        "DATA_DIR": str(settings.data_dir),
        "SMTP_PORT": str(settings.smtp_port),
        "AUTH_REQUESTS_PER_IP_PER_MINUTE": "100000",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "iaf.cli", "api", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        await asyncio.to_thread(wait_for_port, "127.0.0.1", port, 60, process)
        alice = await signup(client)
        bob = await colleague(alice)
        room = await alice.new_room(member_ids=[bob.id])
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as second:
            async with open_stream(second, bob, room["id"]) as stream:
                posted = await alice.say(room["id"], "across processes")
                event = await stream.wait_for(lambda e: e.event == "message.new")
        assert event.data["id"] == posted["id"]
    finally:
        process.terminate()
        process.wait(10)


async def test_resume_points_beyond_64_bits_are_refused_before_the_stream_starts(client):
    alice = await signup(client)
    room = await alice.new_room()
    url = f"/api/chat/rooms/{room['id']}/events"
    for headers, params in (
        ({"Last-Event-ID": str(2**63)}, {}),
        ({"Last-Event-ID": "9" * 40}, {}),
        ({"Last-Event-ID": "-1"}, {}),
        ({"Last-Event-ID": "1_000"}, {}),
        ({}, {"after": 2**63}),
        ({}, {"after": 10**30}),
    ):
        response = await alice.get(url, headers=headers, params=params)
        assert response.status_code == 422, (headers, params, response.text)
        assert response.json()["error"]["code"] in ("invalid_last_event_id", "invalid_request")
    await alice.say(room["id"], "stored before")
    # The largest id is a valid resume point: the stream opens (nothing is newer than it).
    async with open_stream(client, alice, room["id"], last_event_id=2**63 - 1) as stream:
        assert [e.event for e in stream.events] == ["presence"]


async def test_read_markers_beyond_64_bits_are_422(client):
    alice = await signup(client)
    room = await alice.new_room()
    for message_id in (2**63, 10**30):
        response = await alice.post(
            f"/api/chat/rooms/{room['id']}/read", json={"message_id": message_id}
        )
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "invalid_request"


async def test_deleting_a_room_ends_its_open_streams(client):
    alice = await signup(client)
    bob = await colleague(alice)
    room = await alice.new_room(member_ids=[bob.id])
    async with open_stream(client, bob, room["id"]) as stream:
        assert (await alice.delete(f"/api/chat/rooms/{room['id']}")).status_code == 204
        notice = await stream.wait_for(lambda e: e.event == "room.delete")
        assert notice.data == {"room_id": room["id"]} and notice.id is None
        assert stream._task is not None
        await asyncio.wait_for(stream._task, 60)  # the server closed the stream


async def test_typing_is_rate_limited(client, settings):
    alice = await signup(client)
    room = await alice.new_room()
    url = f"/api/chat/rooms/{room['id']}/typing"
    statuses = [(await alice.post(url)).status_code for _ in range(settings.typing_per_minute)]
    assert set(statuses) == {202}
    limited = await alice.post(url)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
