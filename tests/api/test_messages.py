"""Posting, idempotency, pagination, edit and delete; bad input is refused, nothing stored."""

from __future__ import annotations

import asyncio
import json

import psycopg

from tests.helpers import colleague, signup


async def _count(person, room_id):
    return len(
        (await person.get(f"/api/chat/rooms/{room_id}/messages", params={"limit": 200})).json()[
            "items"
        ]
    )


async def test_post_is_idempotent_with_client_msg_id(client):
    alice = await signup(client)
    room = await alice.new_room()
    url = f"/api/chat/rooms/{room['id']}/messages"
    first = await alice.post(url, json={"content": "hello", "client_msg_id": "abc-1"})
    again = await alice.post(url, json={"content": "hello", "client_msg_id": "abc-1"})
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    assert await _count(alice, room["id"]) == 1


async def test_cursor_pagination_before_and_after(client):
    alice = await signup(client)
    room = await alice.new_room()
    ids = [(await alice.say(room["id"], f"m{i}"))["id"] for i in range(7)]
    url = f"/api/chat/rooms/{room['id']}/messages"
    page = (await alice.get(url, params={"limit": 3})).json()
    assert [m["id"] for m in page["items"]] == ids[-3:]
    older = (await alice.get(url, params={"limit": 3, "before": page["next_before"]})).json()
    assert [m["id"] for m in older["items"]] == ids[1:4]
    newer = (await alice.get(url, params={"limit": 3, "after": ids[1]})).json()
    assert [m["id"] for m in newer["items"]] == ids[2:5]
    assert newer["next_after"] == ids[4]
    too_many = await alice.get(url, params={"limit": 201})
    assert too_many.status_code == 422


async def test_bad_bodies_get_json_4xx_and_store_nothing(client, settings):
    alice = await signup(client)
    room = await alice.new_room()
    url = f"/api/chat/rooms/{room['id']}/messages"
    oversized = "x" * (settings.message_max_bytes + 1)
    cases = [
        ({"json": {"content": oversized}}, 413, "content_too_large"),
        (
            {"json": {"content": "é" * (settings.message_max_bytes // 2 + 1)}},
            413,
            "content_too_large",
        ),
        ({"json": {"content": "   \n"}}, 422, "empty_content"),
        ({"json": {"content": ""}}, 422, "empty_content"),
        ({"json": {}}, 422, "invalid_request"),
        ({"json": {"content": 5}}, 422, "invalid_request"),
        ({"json": {"content": "hi", "unknown": 1}}, 422, "invalid_request"),
        ({"json": {"content": "hi", "reply_to_id": 999999999}}, 422, "invalid_reply_to"),
        (
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            422,
            "malformed_json",
        ),
        (
            {"content": b"x" * (2 * 1024 * 1024), "headers": {"content-type": "application/json"}},
            413,
            "payload_too_large",
        ),
    ]
    for kwargs, status, code in cases:
        headers = {**alice.headers, **kwargs.pop("headers", {})}
        response = await client.post(url, headers=headers, **kwargs)
        assert response.status_code == status, (code, response.text)
        assert response.json()["error"]["code"] == code
    assert await _count(alice, room["id"]) == 0
    exactly = await alice.post(url, json={"content": "y" * settings.message_max_bytes})
    assert exactly.status_code == 201


async def test_posting_is_rate_limited_with_headers(client, settings):
    alice = await signup(client)
    room = await alice.new_room()
    url = f"/api/chat/rooms/{room['id']}/messages"
    first = await alice.post(url, json={"content": "1"})
    assert first.headers["X-RateLimit-Limit"] == str(settings.posts_per_minute)
    remaining = int(first.headers["X-RateLimit-Remaining"])
    for i in range(remaining):
        assert (await alice.post(url, json={"content": f"n{i}"})).status_code == 201
    limited = await alice.post(url, json={"content": "one too many"})
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert await _count(alice, room["id"]) == remaining + 1


async def test_edit_by_author_only_and_delete_leaves_tombstone(client):
    alice = await signup(client)
    bob = await colleague(alice)
    room = await alice.new_room(member_ids=[bob.id])
    message = await alice.say(room["id"], "first draft")
    assert (
        await bob.put(f"/api/chat/messages/{message['id']}", json={"content": "hijack"})
    ).status_code == 403
    edited = await alice.put(f"/api/chat/messages/{message['id']}", json={"content": "final"})
    assert edited.status_code == 200 and edited.json()["edited_at"] is not None
    assert (await bob.delete(f"/api/chat/messages/{message['id']}")).status_code == 403
    assert (await alice.delete(f"/api/chat/messages/{message['id']}")).status_code == 204
    items = (await bob.get(f"/api/chat/rooms/{room['id']}/messages")).json()["items"]
    assert items[0]["id"] == message["id"]
    assert items[0]["deleted_at"] is not None and items[0]["content"] == ""
    assert (
        await alice.put(f"/api/chat/messages/{message['id']}", json={"content": "x"})
    ).status_code == 410


async def test_room_admin_deletes_others_messages_but_edit_window_holds(
    client, settings, database_url
):
    import psycopg

    alice = await signup(client)
    bob = await colleague(alice)
    room = await alice.new_room(member_ids=[bob.id])
    message = await bob.say(room["id"], "old message")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE messages SET created_at = now() - make_interval(mins => %s) WHERE id = %s",
            (settings.message_edit_window_minutes + 1, message["id"]),
        )
    late = await bob.put(f"/api/chat/messages/{message['id']}", json={"content": "too late"})
    assert late.status_code == 409 and late.json()["error"]["code"] == "edit_window_closed"
    assert (await alice.delete(f"/api/chat/messages/{message['id']}")).status_code == 204


def as_json(body: object) -> dict[str, object]:
    """ASCII-escaped JSON, as any client may send it: lone surrogates travel as "\\ud800"
    (httpx's json= would fail to encode them before sending)."""
    return {"content": json.dumps(body), "headers": {"content-type": "application/json"}}


async def test_unstorable_text_is_422_and_changes_nothing(client):
    alice = await signup(client)
    room = await alice.new_room()
    url = f"/api/chat/rooms/{room['id']}/messages"
    message = await alice.say(room["id"], "kept as is")
    bad_posts = [
        {"content": "lone \ud800 surrogate"},
        {"content": "\udfff"},
        {"content": "nul \u0000 inside"},
        {"content": "fine", "client_msg_id": "id\u0000"},
        {"content": "fine", "client_msg_id": "id\ud800"},
    ]
    for body in bad_posts:
        response = await alice.post(url, **as_json(body))
        assert response.status_code == 422, (body, response.text)
        assert response.json()["error"]["code"] == "invalid_request"
    edit_url = f"/api/chat/messages/{message['id']}"
    for content in ("edit \ud800", "edit \u0000"):
        response = await alice.put(edit_url, **as_json({"content": content}))
        assert response.status_code == 422, response.text
    listed = (await alice.get(url)).json()["items"]
    assert [(m["id"], m["content"], m["edited_at"]) for m in listed] == [
        (message["id"], "kept as is", None)
    ]


async def test_ids_beyond_64_bits_are_422_and_change_nothing(client):
    alice = await signup(client)
    room = await alice.new_room()
    url = f"/api/chat/rooms/{room['id']}/messages"
    message = await alice.say(room["id"], "kept as is")
    for reply_to_id in (2**63, 10**30):
        response = await alice.post(url, json={"content": "fine", "reply_to_id": reply_to_id})
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "invalid_request"
    at_limit = await alice.post(url, json={"content": "fine", "reply_to_id": 2**63 - 1})
    assert at_limit.status_code == 422 and at_limit.json()["error"]["code"] == "invalid_reply_to"

    for message_id in (2**63, 10**30):
        big = f"/api/chat/messages/{message_id}"
        assert (await alice.put(big, json={"content": "x"})).status_code == 422
        assert (await alice.delete(big)).status_code == 422
    biggest = f"/api/chat/messages/{2**63 - 1}"
    assert (await alice.put(biggest, json={"content": "x"})).status_code == 404
    for params in ({"before": 2**63}, {"after": 2**63}, {"after": 10**40}):
        response = await alice.get(url, params=params)
        assert response.status_code == 422, (params, response.text)
        assert response.json()["error"]["code"] == "invalid_request"
    assert (await alice.get(url, params={"before": 2**63 - 1})).status_code == 200

    listed = (await alice.get(url)).json()["items"]
    assert [(m["id"], m["content"], m["edited_at"]) for m in listed] == [
        (message["id"], "kept as is", None)
    ]


def _db(database_url: str, sql: str, *params: object) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return list(conn.execute(sql, params).fetchall())


async def test_a_revoked_token_or_a_frozen_account_cannot_post(client, database_url):
    """Posting confirms the account in its own statement: the checks get_current_user makes
    (active account, current token version) hold there too."""
    alice = await signup(client)
    room = await alice.new_room()
    url = f"/api/chat/rooms/{room['id']}/messages"
    assert (await alice.post(url, json={"content": "before"})).status_code == 201
    _db(
        database_url,
        "UPDATE users SET token_version = token_version + 1 WHERE id = %s RETURNING id",
        alice.id,
    )
    revoked = await alice.post(url, json={"content": "after revocation"})
    assert revoked.status_code == 401 and revoked.json()["error"]["code"] == "unauthorized"
    bob = await signup(client, "Bob Frozen")
    bob_room = await bob.new_room()
    _db(database_url, "UPDATE users SET status = 'frozen' WHERE id = %s RETURNING id", bob.id)
    frozen = await bob.post(f"/api/chat/rooms/{bob_room['id']}/messages", json={"content": "x"})
    assert frozen.status_code == 401
    stored = _db(
        database_url,
        "SELECT count(*) FROM messages WHERE sender_user_id IN (%s, %s)",
        alice.id,
        bob.id,
    )
    assert stored[0][0] == 1


async def test_a_retried_post_returns_the_stored_message_even_at_the_limit(client, settings):
    alice = await signup(client)
    room = await alice.new_room()
    url = f"/api/chat/rooms/{room['id']}/messages"
    first = await alice.post(url, json={"content": "first", "client_msg_id": "retry-me"})
    for i in range(int(first.headers["X-RateLimit-Remaining"])):
        assert (await alice.post(url, json={"content": f"n{i}"})).status_code == 201
    assert (await alice.post(url, json={"content": "over"})).status_code == 429
    again = await alice.post(url, json={"content": "first", "client_msg_id": "retry-me"})
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]


async def test_refused_posts_do_not_count_against_the_limit(client, settings):
    alice = await signup(client)
    room = await alice.new_room()
    url = f"/api/chat/rooms/{room['id']}/messages"
    for _ in range(3):
        bad = await alice.post(url, json={"content": "x", "reply_to_id": 999_999_999})
        assert bad.status_code == 422
    ok = await alice.post(url, json={"content": "counted"})
    assert int(ok.headers["X-RateLimit-Remaining"]) == settings.posts_per_minute - 1


async def test_a_chunked_body_past_the_limit_is_413_json_and_stores_nothing(client):
    """No Content-Length to refuse by: the bytes read are counted instead."""
    alice = await signup(client)
    room = await alice.new_room()

    async def chunks():
        yield b'{"content": "'
        for _ in range(40):
            yield b"x" * 32_768  # 1.25 MiB in all, past the 1 MiB body limit
        yield b'"}'

    response = await alice.post(
        f"/api/chat/rooms/{room['id']}/messages",
        content=chunks(),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "payload_too_large"
    assert await _count(alice, room["id"]) == 0


async def test_identical_posts_racing_each_other_store_one_message(client, database_url):
    """A client that retries before its first attempt answered: both get the one message.
    Holding the poster's rate-limit row makes both statements look for the other's message
    before either stores its own."""
    alice = await signup(client)
    room = await alice.new_room()
    url = f"/api/chat/rooms/{room['id']}/messages"
    body = {"content": "once", "client_msg_id": "race-1"}
    async with await psycopg.AsyncConnection.connect(database_url) as blocker:
        seconds = await (await blocker.execute("SELECT extract(epoch FROM now()) % 60")).fetchone()
        if seconds is not None and float(seconds[0]) > 50:
            await asyncio.sleep(61 - float(seconds[0]))  # the counter row must stay current
        await blocker.commit()
        await alice.say(room["id"], "warm up")  # the counter row exists; past the first post
        held = await blocker.execute(
            "SELECT hits FROM rate_limit_counters WHERE bucket = %s"
            " ORDER BY window_start DESC LIMIT 1 FOR UPDATE",
            (f"post:{alice.id}",),
        )
        assert await held.fetchone() is not None
        racing = [asyncio.ensure_future(alice.post(url, json=body)) for _ in range(2)]
        await asyncio.sleep(1.0)
        await blocker.commit()
    first, second = await asyncio.gather(*racing)
    assert sorted((first.status_code, second.status_code)) == [200, 201], second.text
    assert first.json()["id"] == second.json()["id"]
    assert await _count(alice, room["id"]) == 2
