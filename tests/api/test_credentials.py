"""Credentials: API keys with scopes and expiry, deactivation by an org admin, password reset
by e-mail, and open SSE streams ended when the credential they were opened with ends."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import psycopg

from iaf.settings import Settings
from tests.conftest import make_settings
from tests.helpers import Person, SSEStream, colleague, open_stream, serve_api, signup
from tests.smtp_capture import SmtpCapture, text_of

PASSWORD = "correct horse battery"
RESET_LINK = re.compile(r"#reset-password=([A-Za-z0-9_-]+)")


async def api_key(person: Person, **body: Any) -> Person:
    response = await person.post("/api/auth/api-keys", json={"name": "script", **body})
    assert response.status_code == 201, response.text
    return Person(person.client, response.json()["key"], person.user)


async def ended(stream: SSEStream) -> str:
    event = await stream.wait_for(lambda e: e.event == "stream.end", timeout=30)
    await stream._task  # type: ignore[misc]  # the server closed the response after it
    return str(event.data["reason"])


async def test_a_key_does_what_its_scopes_allow_and_no_account_management(client) -> None:
    alice = await signup(client)
    room = await alice.new_room("scoped")
    chat_key = await api_key(alice, scopes=["chat"])
    assert (
        await chat_key.post(f"/api/chat/rooms/{room['id']}/messages", json={"content": "hi"})
    ).status_code == 201
    refused = await chat_key.get("/v1/models")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "insufficient_scope"
    agents_key = await api_key(alice, scopes=["agents"])
    assert (await agents_key.get("/v1/models")).status_code == 200
    for key in (chat_key, agents_key):
        made = await key.post("/api/auth/api-keys", json={"name": "another"})
        assert made.status_code == 403
        assert made.json()["error"]["code"] == "api_key_not_allowed"
    assert (await chat_key.get("/api/me")).status_code == 200


async def test_a_member_cannot_give_a_key_the_compliance_scope(client) -> None:
    alice = await signup(client)
    response = await alice.post("/api/auth/api-keys", json={"name": "x", "scopes": ["compliance"]})
    assert response.status_code == 403 and response.json()["error"]["code"] == "scope_not_allowed"
    default = await alice.post("/api/auth/api-keys", json={"name": "x"})
    assert sorted(default.json()["scopes"]) == ["agents", "chat"]
    assert default.json()["expires_at"] is not None, "keys expire by default"


async def test_an_expired_key_is_refused_and_use_is_recorded(client, database_url: str) -> None:
    alice = await signup(client)
    key = await api_key(alice)
    assert (await key.get("/api/me")).status_code == 200
    listed = (await alice.get("/api/auth/api-keys")).json()["items"]
    assert listed[0]["last_used_at"] is not None
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = %s",
            (listed[0]["id"],),
        )
    assert (await key.get("/api/me")).status_code == 401


async def test_revoking_a_key_ends_its_open_stream(client) -> None:
    alice = await signup(client)
    room = await alice.new_room("revoked")
    key = await api_key(alice, scopes=["chat"])
    key_id = (await alice.get("/api/auth/api-keys")).json()["items"][0]["id"]
    async with (
        open_stream(client, key, room["id"]) as by_key,
        open_stream(client, alice, room["id"]) as by_token,
    ):
        assert (await alice.delete(f"/api/auth/api-keys/{key_id}")).status_code == 204
        assert await ended(by_key) == "credentials_revoked"
        await alice.say(room["id"], "still here")
        await by_token.wait_for(lambda e: e.event == "message.new")
        assert not any(e.event == "stream.end" for e in by_token.events)


async def test_an_org_admin_deactivates_and_reactivates_a_colleague(client) -> None:
    admin = await signup(client, "Admin Person")
    bob = await colleague(admin)
    room = await bob.new_room("bob's")
    async with open_stream(client, bob, room["id"]) as stream:
        response = await admin.post(f"/api/org/users/{bob.id}/deactivate")
        assert response.status_code == 200 and response.json()["status"] == "deactivated"
        assert await ended(stream) == "credentials_revoked"
    assert (await bob.get("/api/me")).status_code == 401
    login = await client.post(
        "/api/auth/login", json={"email": bob.user["email"], "password": PASSWORD}
    )
    assert login.status_code == 401
    listed = {u["id"]: u["status"] for u in (await admin.get("/api/org/users")).json()["items"]}
    assert listed[bob.id] == "deactivated"
    assert (await admin.post(f"/api/org/users/{bob.id}/deactivate")).status_code == 409
    assert (await admin.post(f"/api/org/users/{admin.id}/deactivate")).status_code == 409
    assert (await bob.post(f"/api/org/users/{admin.id}/deactivate")).status_code == 401
    reactivated = await admin.post(f"/api/org/users/{bob.id}/reactivate")
    assert reactivated.status_code == 200 and reactivated.json()["status"] == "active"
    assert (await bob.get("/api/me")).status_code == 401, "old tokens stay revoked"
    login = await client.post(
        "/api/auth/login", json={"email": bob.user["email"], "password": PASSWORD}
    )
    assert login.status_code == 200


async def test_another_org_cannot_deactivate_my_colleague(client) -> None:
    admin = await signup(client)
    bob = await colleague(admin)
    stranger = await signup(client, "Other Admin")
    response = await stranger.post(f"/api/org/users/{bob.id}/deactivate")
    assert response.status_code == 404
    member_try = await bob.post(f"/api/org/users/{admin.id}/deactivate")
    assert member_try.status_code == 403


async def reset_token(smtp: SmtpCapture, email: str, seen: int = 0) -> str:
    for _ in range(600):
        if len(smtp.to(email)) > seen:
            break
        await asyncio.sleep(0.05)
    found = RESET_LINK.search(text_of(smtp.to(email)[-1]))
    assert found, "the mail carries a reset link"
    return found.group(1)


async def test_password_reset_by_mail_once_and_it_ends_every_session(client, smtp) -> None:
    alice = await signup(client)
    email = alice.user["email"]
    room = await alice.new_room("before the reset")
    unknown = await client.post("/api/auth/password-reset", json={"email": "nobody@example.com"})
    asked = await client.post("/api/auth/password-reset", json={"email": email})
    assert asked.status_code == unknown.status_code == 202
    assert asked.json() == unknown.json()
    token = await reset_token(smtp, email)
    async with open_stream(client, alice, room["id"]) as stream:
        confirm = {"token": token, "new_password": "a brand new password"}
        done = await client.post("/api/auth/password-reset/confirm", json=confirm)
        assert done.status_code == 200, done.text
        assert await ended(stream) == "credentials_revoked"
    again = await client.post("/api/auth/password-reset/confirm", json=confirm)
    assert again.status_code == 410 and again.json()["error"]["code"] == "link_used"
    assert (await alice.get("/api/me")).status_code == 401
    new_login = {"email": email, "password": "a brand new password"}
    assert (await client.post("/api/auth/login", json=new_login)).status_code == 200
    assert not smtp.to("nobody@example.com")


async def test_a_newer_reset_link_replaces_the_older_one(client, smtp) -> None:
    alice = await signup(client)
    email = alice.user["email"]
    await client.post("/api/auth/password-reset", json={"email": email})
    first = await reset_token(smtp, email)
    await client.post("/api/auth/password-reset", json={"email": email})
    second = await reset_token(smtp, email, seen=1)
    body = {"new_password": "another new password"}
    old = await client.post("/api/auth/password-reset/confirm", json={"token": first, **body})
    assert old.status_code == 410
    new = await client.post("/api/auth/password-reset/confirm", json={"token": second, **body})
    assert new.status_code == 200


async def test_a_reset_link_expires_by_its_workflow_timer(
    settings: Settings, worker: object, smtp: SmtpCapture, database_url: str
) -> None:
    """The durable expiry: the PasswordReset workflow's timer closes the row and erases the
    salt the link is derived from."""
    short = settings.model_copy(update={"password_reset_minutes": 0.05})
    async with serve_api(short) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        alice = await signup(http)
        await http.post("/api/auth/password-reset", json={"email": alice.user["email"]})
        token = await reset_token(smtp, alice.user["email"])
        for _ in range(600):
            with psycopg.connect(database_url) as conn:
                status, salt = conn.execute(
                    "SELECT status, token_salt FROM password_resets WHERE user_id = %s",
                    (alice.id,),
                ).fetchone()
            if status != "pending":
                break
            await asyncio.sleep(0.1)
        assert (status, salt) == ("expired", None)
        late = await http.post(
            "/api/auth/password-reset/confirm",
            json={"token": token, "new_password": "too late password"},
        )
        assert late.status_code == 410 and late.json()["error"]["code"] == "link_expired"


async def test_streams_per_person_are_capped(
    settings: Settings, database_url: str, tmp_path
) -> None:
    capped = make_settings(
        tmp_path, database_url, settings.temporal_address, sse_streams_per_user=2
    )
    async with serve_api(capped) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        alice = await signup(http)
        bob = await signup(http, "Bob Other")
        room = await alice.new_room("many tabs")
        bobs_room = await bob.new_room("bob")
        async with open_stream(http, alice, room["id"]), open_stream(http, alice, room["id"]):
            third = await alice.get(f"/api/chat/rooms/{room['id']}/events")
            assert third.status_code == 429
            assert third.json()["error"]["code"] == "too_many_streams"
            assert "Retry-After" in third.headers
            async with open_stream(http, bob, bobs_room["id"]):
                pass  # another person has streams of their own
        for _ in range(200):  # the server notices the closed streams, then frees their places
            request = http.build_request(
                "GET", f"/api/chat/rooms/{room['id']}/events", headers=alice.headers
            )
            response = await http.send(request, stream=True)
            await response.aclose()
            if response.status_code != 429:
                break
            await asyncio.sleep(0.05)
        assert response.status_code == 200
