# ruff: noqa: E501  (the matrix reads as a table: one line per route)
"""Who may call what: every route of the API × nine callers, with the status each must get.

The table below has one row per operation of the OpenAPI document (the route table); a
route added without a row fails `test_every_route_has_a_row`. Callers, in column order:

    anon    no credentials
    other   an org admin of another organisation
    nonmem  a colleague (same organisation) who is not in the room
    member  a member of the room
    radmin  the room's admin
    owner   the room's owner
    oadmin  the organisation's admin (not in the room)
    compl   a compliance officer of the organisation (not in the room)
    key     the member's API key with its default scopes (chat, agents)

A cell is a status, or statuses joined by "|" where the answer depends on what an earlier
row did (an export already requested is 200, else 202). Rows whose call changes or removes
something get fresh resources for each caller (`fresh=True`).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from iaf.db.engine import make_engine, make_sessionmaker
from iaf.db.models import KnowledgeSource
from iaf.db.repositories.knowledge_sources import KnowledgeSourceRepository
from iaf.settings import Settings
from tests.helpers import Person, colleague, signup, unique_email

CALLERS = ("anon", "other", "nonmem", "member", "radmin", "owner", "oadmin", "compl", "key")
PASSWORD = "correct horse battery"


@dataclass
class World:
    people: dict[str, Person]
    room: dict[str, Any]
    message: dict[str, Any]
    reply_id: str
    document_id: str
    compliance_request_id: str
    login_email: str
    attachment_id: str = ""
    source_id: str = ""
    settings: Any = None

    async def fresh_room(self) -> str:
        """A room owned by `owner`, with `radmin` as admin and `member` as member."""
        owner = self.people["owner"]
        room = await owner.new_room("fresh")
        for name, role in (("radmin", "admin"), ("member", "member")):
            added = await owner.post(
                f"/api/chat/rooms/{room['id']}/members",
                json={"user_id": self.people[name].id, "role": role},
            )
            assert added.status_code == 201, added.text
        return str(room["id"])


@dataclass(frozen=True)
class Call:
    method: str
    url: str
    json: Any = None
    files: Any = None


Build = Callable[[World], Awaitable[Call]]


@dataclass(frozen=True)
class Row:
    expected: str
    build: Build
    fresh: bool = False  # build once per caller


def row(expected: str, fresh: bool = False) -> Callable[[Build], Row]:
    def wrap(build: Build) -> Row:
        return Row(expected, build, fresh)

    return wrap


def fixed(method: str, url: str, json: Any = None, files: Any = None) -> Build:
    async def build(world: World) -> Call:
        return Call(method, url.format(**_ids(world)), json, files)

    return build


def _ids(world: World) -> dict[str, Any]:
    return {
        "room": world.room["id"],
        "message": world.message["id"],
        "member": world.people["member"].id,
        "nonmem": world.people["nonmem"].id,
        "reply": world.reply_id,
        "document": world.document_id,
        "request": world.compliance_request_id,
        "attachment": world.attachment_id,
        "source": world.source_id,
    }


async def _new_colleague(world: World) -> str:
    return (await colleague(world.people["oadmin"], "Target Person")).id


async def _deactivate_target(world: World) -> Call:
    return Call("POST", f"/api/org/users/{await _new_colleague(world)}/deactivate")


async def _reactivate_target(world: World) -> Call:
    target = await _new_colleague(world)
    done = await world.people["oadmin"].post(f"/api/org/users/{target}/deactivate")
    assert done.status_code == 200, done.text
    return Call("POST", f"/api/org/users/{target}/reactivate")


async def _member_key(world: World) -> Call:
    made = await world.people["member"].post("/api/auth/api-keys", json={"name": "to revoke"})
    return Call("DELETE", f"/api/auth/api-keys/{made.json()['id']}")


async def _room_delete(world: World) -> Call:
    return Call("DELETE", f"/api/chat/rooms/{await world.fresh_room()}")


async def _member_add(world: World) -> Call:
    room = await world.fresh_room()
    return Call("POST", f"/api/chat/rooms/{room}/members", {"user_id": world.people["nonmem"].id})


async def _member_role(world: World) -> Call:
    room = await world.fresh_room()
    return Call(
        "PATCH", f"/api/chat/rooms/{room}/members/{world.people['member'].id}", {"role": "admin"}
    )


async def _member_remove(world: World) -> Call:
    room = await world.fresh_room()
    return Call("DELETE", f"/api/chat/rooms/{room}/members/{world.people['member'].id}")


async def _members_message(world: World) -> int:
    said = await world.people["member"].say(world.room["id"], f"to change {uuid.uuid4().hex[:6]}")
    return int(said["id"])


async def _message_edit(world: World) -> Call:
    return Call("PUT", f"/api/chat/messages/{await _members_message(world)}", {"content": "edited"})


async def _message_delete(world: World) -> Call:
    return Call("DELETE", f"/api/chat/messages/{await _members_message(world)}")


async def _read(world: World) -> Call:
    return Call(
        "POST", f"/api/chat/rooms/{world.room['id']}/read", {"message_id": world.message["id"]}
    )


async def _invite(world: World) -> Call:
    return Call(
        "POST", f"/api/chat/rooms/{world.room['id']}/invite", {"email": unique_email("inv")}
    )


async def _invitation(world: World) -> str:
    made = await world.people["owner"].post(
        f"/api/chat/rooms/{world.room['id']}/invite", json={"email": unique_email("inv")}
    )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def _invitation_resend(world: World) -> Call:
    invitation = await _invitation(world)
    return Call("POST", f"/api/chat/rooms/{world.room['id']}/invitations/{invitation}/resend")


async def _invitation_revoke(world: World) -> Call:
    invitation = await _invitation(world)
    return Call("DELETE", f"/api/chat/rooms/{world.room['id']}/invitations/{invitation}")


async def _org_user(world: World) -> Call:
    body = {"email": unique_email("new"), "name": "New Person", "password": PASSWORD}
    return Call("POST", "/api/org/users", body)


async def _signup(world: World) -> Call:
    return Call(
        "POST",
        "/api/auth/signup",
        {"email": unique_email("su"), "password": PASSWORD, "name": "Su"},
    )


async def _login(world: World) -> Call:
    return Call("POST", "/api/auth/login", {"email": world.login_email, "password": PASSWORD})


async def _reset(world: World) -> Call:
    return Call("POST", "/api/auth/password-reset", {"email": unique_email("nobody")})


async def _document(world: World) -> Call:
    body = {"title": "t", "content": "some text", "scope": "room", "room_id": world.room["id"]}
    return Call("POST", "/api/knowledge/documents", body)


async def _document_delete(world: World) -> Call:
    body = {"title": "t", "content": "to delete", "scope": "room", "room_id": world.room["id"]}
    made = await world.people["member"].post("/api/knowledge/documents", json=body)
    assert made.status_code == 202, made.text
    return Call("DELETE", f"/api/knowledge/documents/{made.json()['id']}")


async def _memory_delete(world: World) -> Call:
    made = await world.people["member"].post("/api/memories", json={"content": "a memory"})
    assert made.status_code == 201, made.text
    return Call("DELETE", f"/api/memories/{made.json()['id']}")


async def _compliance_submit(world: World) -> Call:
    body = {
        "kind": "export",
        "subjects": [{"user_id": world.people["nonmem"].id}],
        "reason": "audit",
    }
    return Call("POST", "/api/compliance/requests", body)


def _file(text: str = "some notes") -> Any:
    return {"file": ("notes.txt", text.encode(), "text/plain")}


async def _members_upload(world: World, post: bool) -> str:
    room = world.room["id"]
    member = world.people["member"]
    uploaded = await member.post(f"/api/chat/rooms/{room}/attachments", files=_file())
    assert uploaded.status_code == 201, uploaded.text
    if post:
        await member.say(room, "a file", attachment_ids=[uploaded.json()["id"]])
    return str(uploaded.json()["id"])


async def _attachment_discard(world: World) -> Call:
    return Call("DELETE", f"/api/chat/attachments/{await _members_upload(world, post=False)}")


async def _attachment_knowledge(world: World) -> Call:
    attachment = await _members_upload(world, post=True)
    return Call("POST", f"/api/chat/attachments/{attachment}/knowledge")


async def _members_source(world: World) -> str:
    """A room source owned by `member`, written directly: no host may be crawled here."""
    engine = make_engine(world.settings.database_url, 1)
    try:
        async with make_sessionmaker(engine)() as session:
            source = await KnowledgeSourceRepository(session).create(
                KnowledgeSource(
                    org_id=uuid.UUID(world.people["member"].user["org_id"]),
                    room_id=uuid.UUID(world.room["id"]),
                    owner_id=uuid.UUID(world.people["member"].id),
                    scope="room",
                    url="https://docs.example.org/",
                    mode="page",
                    max_pages=1,
                    recrawl_minutes=None,
                    status="done",
                )
            )
            await session.commit()
            return str(source.id)
    finally:
        await engine.dispose()


async def _source_delete(world: World) -> Call:
    return Call("DELETE", f"/api/knowledge/sources/{await _members_source(world)}")


async def _source(world: World) -> Call:
    body = {"url": "https://docs.example.org/", "scope": "room", "room_id": world.room["id"]}
    return Call("POST", "/api/knowledge/sources", body)


R = "/api/chat/rooms/{room}"
ROWS: dict[tuple[str, str], Row] = {
    #                                              anon other nonmem member radmin owner oadmin compl key
    ("GET", "/healthz"): row("200 200 200 200 200 200 200 200 200")(fixed("GET", "/healthz")),
    ("POST", "/api/auth/signup"): row("201 201 201 201 201 201 201 201 201", True)(_signup),
    ("POST", "/api/auth/login"): row("200 200 200 200 200 200 200 200 200", True)(_login),
    ("POST", "/api/auth/password-reset"): row("202 202 202 202 202 202 202 202 202", True)(_reset),
    ("POST", "/api/auth/password-reset/confirm"): row("404 404 404 404 404 404 404 404 404")(
        fixed(
            "POST",
            "/api/auth/password-reset/confirm",
            {"token": "x" * 43, "new_password": PASSWORD},
        )
    ),
    ("GET", "/api/me"): row("401 200 200 200 200 200 200 200 200")(fixed("GET", "/api/me")),
    ("PUT", "/api/me"): row("401 200 200 200 200 200 200 200 403")(
        fixed("PUT", "/api/me", {"name": "Same Name"})
    ),
    ("POST", "/api/me/password"): row("401 403 403 403 403 403 403 403 403")(
        fixed("POST", "/api/me/password", {"current_password": "not it", "new_password": PASSWORD})
    ),
    ("POST", "/api/me/email/confirm"): row("404 404 404 404 404 404 404 404 404")(
        fixed("POST", "/api/me/email/confirm", {"token": "e" * 43})
    ),
    ("GET", "/api/events"): row("401 200 200 200 200 200 200 200 200")(fixed("GET", "/api/events")),
    ("POST", "/api/knowledge/documents/upload"): row("401 422 422 422 422 422 422 422 422")(
        fixed("POST", "/api/knowledge/documents/upload", {"scope": "org"})
    ),
    ("GET", "/api/org/users"): row("401 200 200 200 200 200 200 200 403")(
        fixed("GET", "/api/org/users")
    ),
    ("POST", "/api/org/users"): row("401 201 403 403 403 403 201 403 403", True)(_org_user),
    ("POST", "/api/org/users/{user_id}/deactivate"): row(
        "401 404 403 403 403 403 200 403 403", True
    )(_deactivate_target),
    ("POST", "/api/org/users/{user_id}/reactivate"): row(
        "401 404 403 403 403 403 200 403 403", True
    )(_reactivate_target),
    ("GET", "/api/auth/api-keys"): row("401 200 200 200 200 200 200 200 403")(
        fixed("GET", "/api/auth/api-keys")
    ),
    ("POST", "/api/auth/api-keys"): row("401 201 201 201 201 201 201 201 403")(
        fixed("POST", "/api/auth/api-keys", {"name": "k"})
    ),
    ("DELETE", "/api/auth/api-keys/{key_id}"): row("401 404 404 204 404 404 404 404 403", True)(
        _member_key
    ),
    ("POST", "/api/chat/rooms"): row("401 201 201 201 201 201 201 201 201")(
        fixed("POST", "/api/chat/rooms", {"name": "another"})
    ),
    ("GET", "/api/chat/rooms"): row("401 200 200 200 200 200 200 200 200")(
        fixed("GET", "/api/chat/rooms")
    ),
    ("GET", "/api/chat/rooms/{room_id}"): row("401 404 404 200 200 200 404 404 200")(
        fixed("GET", R)
    ),
    ("PUT", "/api/chat/rooms/{room_id}"): row("401 404 404 403 200 200 404 404 403")(
        fixed("PUT", R, {"topic": "a topic"})
    ),
    ("DELETE", "/api/chat/rooms/{room_id}"): row("401 404 404 403 403 204 404 404 403", True)(
        _room_delete
    ),
    ("GET", "/api/chat/rooms/{room_id}/members"): row("401 404 404 200 200 200 404 404 200")(
        fixed("GET", R + "/members")
    ),
    ("POST", "/api/chat/rooms/{room_id}/members"): row("401 404 404 403 201 201 404 404 403", True)(
        _member_add
    ),
    ("PATCH", "/api/chat/rooms/{room_id}/members/{user_id}"): row(
        "401 404 404 403 200 200 404 404 403", True
    )(_member_role),
    ("DELETE", "/api/chat/rooms/{room_id}/members/{user_id}"): row(
        "401 404 404 204 204 204 404 404 204", True
    )(_member_remove),
    ("POST", "/api/chat/rooms/{room_id}/messages"): row("401 404 404 201 201 201 404 404 201")(
        fixed("POST", R + "/messages", {"content": "hello"})
    ),
    ("GET", "/api/chat/rooms/{room_id}/messages"): row("401 404 404 200 200 200 404 404 200")(
        fixed("GET", R + "/messages")
    ),
    ("PUT", "/api/chat/messages/{message_id}"): row("401 404 404 200 403 403 404 404 200", True)(
        _message_edit
    ),
    ("DELETE", "/api/chat/messages/{message_id}"): row("401 404 404 204 204 204 404 404 204", True)(
        _message_delete
    ),
    ("GET", "/api/chat/rooms/{room_id}/events"): row("401 404 404 200 200 200 404 404 200")(
        fixed("GET", R + "/events")
    ),
    ("POST", "/api/chat/rooms/{room_id}/read"): row("401 404 404 200 200 200 404 404 200")(_read),
    ("POST", "/api/chat/rooms/{room_id}/typing"): row("401 404 404 202 202 202 404 404 202")(
        fixed("POST", R + "/typing")
    ),
    ("POST", "/api/chat/rooms/{room_id}/invite"): row("401 404 404 403 201 201 404 404 403", True)(
        _invite
    ),
    ("GET", "/api/chat/rooms/{room_id}/invitations"): row("401 404 404 403 200 200 404 404 403")(
        fixed("GET", R + "/invitations")
    ),
    ("POST", "/api/chat/rooms/{room_id}/invitations/{invitation_id}/resend"): row(
        "401 404 404 403 202 202 404 404 403", True
    )(_invitation_resend),
    ("DELETE", "/api/chat/rooms/{room_id}/invitations/{invitation_id}"): row(
        "401 404 404 403 200 200 404 404 403", True
    )(_invitation_revoke),
    ("GET", "/api/chat/invitations/{token}"): row("404 404 404 404 404 404 404 404 404")(
        fixed("GET", "/api/chat/invitations/" + "y" * 43)
    ),
    ("POST", "/api/chat/invitations/{token}/accept"): row("404 404 404 404 404 404 404 404 404")(
        fixed("POST", "/api/chat/invitations/" + "y" * 43 + "/accept")
    ),
    ("GET", "/api/credits"): row("401 200 200 200 200 200 200 200 200")(
        fixed("GET", "/api/credits")
    ),
    ("GET", "/api/referrals"): row("401 200 200 200 200 200 200 200 200")(
        fixed("GET", "/api/referrals")
    ),
    ("GET", "/api/user/data-export"): row("401 202 202|200 202 202 202 202 202 403")(
        fixed("GET", "/api/user/data-export")
    ),
    ("GET", "/api/user/data-export/status"): row("401 200 200 200 200 200 200 200 403")(
        fixed("GET", "/api/user/data-export/status")
    ),
    ("GET", "/api/user/data-export/download/{token}"): row("404 404 404 404 404 404 404 404 404")(
        fixed("GET", "/api/user/data-export/download/" + "z" * 43)
    ),
    ("GET", "/api/user/delete-account"): row("401 404 404 404 404 404 404 404 403")(
        fixed("GET", "/api/user/delete-account")
    ),
    ("POST", "/api/user/delete-account"): row("401 403 403 403 403 403 403 403 403")(
        fixed("POST", "/api/user/delete-account", {"password": "not the password"})
    ),
    ("POST", "/api/user/delete-account/cancel"): row("401 404 404 404 404 404 404 404 403")(
        fixed("POST", "/api/user/delete-account/cancel")
    ),
    ("GET", "/api/user/consents"): row("401 200 200 200 200 200 200 200 403")(
        fixed("GET", "/api/user/consents")
    ),
    ("PUT", "/api/user/consents"): row("401 200 200 200 200 200 200 200 403")(
        fixed("PUT", "/api/user/consents", {"consents": {"analytics": False}})
    ),
    ("POST", "/api/compliance/requests"): row("401 403 403 403 403 403 403 201|200 403", True)(
        _compliance_submit
    ),
    ("GET", "/api/compliance/requests"): row("401 403 403 403 403 403 403 200 403")(
        fixed("GET", "/api/compliance/requests")
    ),
    ("GET", "/api/compliance/requests/{request_id}"): row("401 403 403 403 403 403 403 200 403")(
        fixed("GET", "/api/compliance/requests/{request}")
    ),
    ("POST", "/api/compliance/requests/{request_id}/retry"): row(
        "401 403 403 403 403 403 403 409 403"
    )(fixed("POST", "/api/compliance/requests/{request}/retry", {})),
    ("GET", "/api/compliance/requests/{request_id}/receipt"): row(
        "401 403 403 403 403 403 403 409|404 403"
    )(fixed("GET", "/api/compliance/requests/{request}/receipt")),
    ("GET", "/api/compliance/requests/{request_id}/archive"): row(
        "401 403 403 403 403 403 403 409|404|200 403"
    )(fixed("GET", "/api/compliance/requests/{request}/archive")),
    ("POST", "/api/compliance/requests/{request_id}/cancel"): row(
        "401 403 403 403 403 403 403 200|409 403"
    )(fixed("POST", "/api/compliance/requests/{request}/cancel")),
    ("GET", "/api/agents"): row("401 200 200 200 200 200 200 200 200")(fixed("GET", "/api/agents")),
    ("GET", "/api/agents/{agent_id}"): row("401 200 200 200 200 200 200 200 200")(
        fixed("GET", "/api/agents/architect")
    ),
    ("GET", "/v1/models"): row("401 200 200 200 200 200 200 200 200")(fixed("GET", "/v1/models")),
    ("GET", "/v1/models/{model_id}"): row("401 200 200 200 200 200 200 200 200")(
        fixed("GET", "/v1/models/architect")
    ),
    ("POST", "/v1/chat/completions"): row("401 404 404 404 404 404 404 404 404")(
        fixed(
            "POST",
            "/v1/chat/completions",
            {"model": "no-such-agent", "messages": [{"role": "user", "content": "hi"}]},
        )
    ),
    ("POST", "/api/knowledge/documents"): row("401 404 404 202 202 202 404 404 202", True)(
        _document
    ),
    ("GET", "/api/knowledge/documents"): row("401 200 200 200 200 200 200 200 200")(
        fixed("GET", "/api/knowledge/documents")
    ),
    ("GET", "/api/knowledge/documents/{document_id}"): row("401 404 404 200 200 200 404 404 200")(
        fixed("GET", "/api/knowledge/documents/{document}")
    ),
    ("DELETE", "/api/knowledge/documents/{document_id}"): row(
        "401 404 404 202 202 202 404 404 202", True
    )(_document_delete),
    ("POST", "/api/knowledge/documents/{document_id}/retry"): row(
        "401 404 404 409 409 409 404 404 409"
    )(fixed("POST", "/api/knowledge/documents/{document}/retry")),
    ("POST", "/api/memories"): row("401 201 201 201 201 201 201 201 201")(
        fixed("POST", "/api/memories", {"content": "I like tea"})
    ),
    ("GET", "/api/memories"): row("401 200 200 200 200 200 200 200 200")(
        fixed("GET", "/api/memories")
    ),
    ("DELETE", "/api/memories/{memory_id}"): row("401 404 404 204 404 404 404 404 204", True)(
        _memory_delete
    ),
    ("GET", "/api/chat/rooms/{room_id}/replies/{reply_id}"): row(
        "401 404 404 200 200 200 404 404 200"
    )(fixed("GET", R + "/replies/{reply}")),
    ("POST", "/api/chat/rooms/{room_id}/replies/{reply_id}/cancel"): row(
        "401 404 404 409 409 409 404 404 409"
    )(fixed("POST", R + "/replies/{reply}/cancel")),
    ("GET", "/api/search"): row("401 200 200 200 200 200 200 200 200")(
        fixed("GET", "/api/search?q=hello")
    ),
    ("POST", "/api/chat/rooms/{room_id}/attachments"): row("401 404 404 201 201 201 404 404 201")(
        fixed("POST", R + "/attachments", files=_file())
    ),
    ("GET", "/api/chat/attachments/{attachment_id}"): row("401 404 404 200 200 200 404 404 200")(
        fixed("GET", "/api/chat/attachments/{attachment}")
    ),
    ("GET", "/api/chat/attachments/{attachment_id}/info"): row(
        "401 404 404 200 200 200 404 404 200"
    )(fixed("GET", "/api/chat/attachments/{attachment}/info")),
    ("DELETE", "/api/chat/attachments/{attachment_id}"): row(
        "401 404 404 204 404 404 404 404 204", True
    )(_attachment_discard),
    ("POST", "/api/chat/attachments/{attachment_id}/knowledge"): row(
        "401 404 404 202 202 202 404 404 202", True
    )(_attachment_knowledge),
    # No host may be crawled on this instance: members are told so, strangers learn nothing.
    ("POST", "/api/knowledge/sources"): row("401 404 404 403 403 403 404 404 403")(_source),
    ("GET", "/api/knowledge/sources"): row("401 200 200 200 200 200 200 200 200")(
        fixed("GET", "/api/knowledge/sources")
    ),
    ("GET", "/api/knowledge/sources/{source_id}"): row("401 404 404 200 200 200 404 404 200")(
        fixed("GET", "/api/knowledge/sources/{source}")
    ),
    ("POST", "/api/knowledge/sources/{source_id}/crawl"): row(
        "401 404 404 202 202 202 404 404 202"
    )(fixed("POST", "/api/knowledge/sources/{source}/crawl")),
    ("DELETE", "/api/knowledge/sources/{source_id}"): row(
        "401 404 404 204 204 204 404 404 204", True
    )(_source_delete),
    ("GET", "/api/legal"): row("200 200 200 200 200 200 200 200 200")(fixed("GET", "/api/legal")),
    ("GET", "/legal/{name}"): row("200 200 200 200 200 200 200 200 200")(
        fixed("GET", "/legal/privacy-policy")
    ),
    ("GET", "/api/compliance/breach"): row("401 403 403 403 403 403 403 200 403")(
        fixed("GET", "/api/compliance/breach?from=2026-01-01T00:00:00Z&to=2026-12-31T00:00:00Z")
    ),
    ("PATCH", "/api/chat/rooms/{room_id}/membership"): row("401 404 404 200 200 200 404 404 200")(
        fixed("PATCH", R + "/membership", {"is_muted": False})
    ),
    ("GET", "/api/notifications/settings"): row("401 200 200 200 200 200 200 200 403")(
        fixed("GET", "/api/notifications/settings")
    ),
    ("PUT", "/api/notifications/settings"): row("401 200 200 200 200 200 200 200 403")(
        fixed("PUT", "/api/notifications/settings", {"email_digest": True})
    ),
    # The signed token is the permission: a forged one is refused whoever sends it.
    ("POST", "/api/notifications/unsubscribe"): row("400 400 400 400 400 400 400 400 400")(
        fixed("POST", "/api/notifications/unsubscribe", {"token": "not-a-signed-token"})
    ),
    # Last: it signs each caller's token out.
    ("POST", "/api/auth/logout"): row("401 204 204 204 204 204 204 204 403")(
        fixed("POST", "/api/auth/logout")
    ),
}


def _api_routes(app_openapi: dict[str, Any]) -> set[tuple[str, str]]:
    return {(m.upper(), p) for p, ops in app_openapi["paths"].items() for m in ops}


async def test_every_route_has_a_row(client: httpx.AsyncClient) -> None:
    routes = _api_routes((await client.get("/openapi.json")).json())
    missing = sorted(routes - set(ROWS))
    assert not missing, f"routes without a row in the authorization matrix: {missing}"
    assert not sorted(set(ROWS) - routes), "rows for routes that no longer exist"
    for key, entry in ROWS.items():
        assert len(entry.expected.split()) == len(CALLERS), key


@pytest.fixture(scope="module")
async def world(client_module: httpx.AsyncClient, settings: Settings) -> World:
    http = client_module
    oadmin = await signup(http, "Org Admin")
    people = {"oadmin": oadmin, "other": await signup(http, "Other Org")}
    for name in ("owner", "radmin", "member", "nonmem"):
        people[name] = await colleague(oadmin, name.title())
    compliance = await oadmin.post(
        "/api/org/users",
        json={
            "email": unique_email("compl"),
            "name": "Officer",
            "password": PASSWORD,
            "role": "compliance",
        },
    )
    login = await http.post(
        "/api/auth/login", json={"email": compliance.json()["email"], "password": PASSWORD}
    )
    people["compl"] = Person(http, login.json()["access_token"], login.json()["user"])
    key = await people["member"].post("/api/auth/api-keys", json={"name": "matrix"})
    people["key"] = Person(http, key.json()["key"], people["member"].user)
    people["anon"] = Person(http, "", {})
    world = World(people, {}, {}, "", "", "", people["nonmem"].user["email"])
    world.room = {"id": await world.fresh_room()}
    world.message = await people["member"].say(world.room["id"], "@architect hello")
    world.reply_id = f"reply-{world.message['id']}-architect"
    document = await people["member"].post(
        "/api/knowledge/documents",
        json={"title": "d", "content": "text", "scope": "room", "room_id": world.room["id"]},
    )
    world.document_id = document.json()["id"]
    submitted = await people["compl"].post(
        "/api/compliance/requests",
        json={"kind": "export", "subjects": [{"user_id": people["nonmem"].id}], "reason": "audit"},
    )
    world.compliance_request_id = submitted.json()["items"][0]["request"]["id"]
    world.settings = settings
    world.attachment_id = await _members_upload(world, post=True)
    world.source_id = await _members_source(world)
    # The reply runs on the worker; the cancel row wants it finished (409: nothing to cancel).
    for _ in range(600):
        reply = await people["member"].get(
            f"/api/chat/rooms/{world.room['id']}/replies/{world.reply_id}"
        )
        if reply.status_code == 200 and reply.json().get("status") not in (
            "pending",
            "running",
            "streaming",
        ):
            break
        await asyncio.sleep(0.1)
    return world


@pytest.fixture(scope="module")
async def client_module(api_url: str) -> Any:
    async with httpx.AsyncClient(base_url=api_url, timeout=60) as http:
        yield http


async def send(person: Person, call: Call) -> int:
    # A client address of its own (through the trusted local proxy): per-address limits
    # this table uses up are not the other tests' budget.
    headers = {**(person.headers if person.token else {}), "X-Forwarded-For": "127.251.0.1"}
    request = person.client.build_request(
        call.method, call.url, json=call.json, files=call.files, headers=headers
    )
    response = await person.client.send(request, stream=True)  # an event stream stays open
    await response.aclose()
    return response.status_code


@pytest.mark.parametrize("route", list(ROWS), ids=[f"{m} {p}" for m, p in ROWS])
async def test_authorization(route: tuple[str, str], world: World) -> None:
    entry = ROWS[route]
    shared = None if entry.fresh else await entry.build(world)
    got, expected = [], entry.expected.split()
    for caller in CALLERS:
        call = await entry.build(world) if entry.fresh else shared
        assert call is not None
        got.append(await send(world.people[caller], call))
    mismatches = [
        f"{caller}: expected {want}, got {status}"
        for caller, want, status in zip(CALLERS, expected, got, strict=True)
        if str(status) not in want.split("|")
    ]
    assert not mismatches, f"{route}: " + "; ".join(mismatches)
