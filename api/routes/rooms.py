"""Rooms and their members: only members see a room; owners and admins manage it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Response
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import (
    CurrentUser,
    SessionDep,
    ensure_room_admin,
    ensure_writable,
    room_for_member,
)
from iaf.db.models import Room, User
from iaf.db.repositories.members import MemberRepository
from iaf.db.repositories.room_events import EventRepository
from iaf.db.repositories.rooms import RoomRepository
from iaf.db.repositories.users import UserRepository
from iaf.errors import ApiError
from schemas.chat import (
    MemberAdd,
    MemberOut,
    MemberRoleUpdate,
    RoomCreate,
    RoomOut,
    RoomUpdate,
)

router = APIRouter(prefix="/api/chat", tags=["rooms"])

DIRECT_ROOM_MEMBERS = 2


def room_out(
    room: Room, role: str | None = None, unread: int | None = None, mentions: int | None = None
) -> RoomOut:
    return RoomOut(
        id=room.id,
        org_id=room.org_id,
        name=room.name,
        kind=room.kind,
        topic=room.topic,
        auto_route=room.auto_route,
        archived=room.archived_at is not None,
        created_at=room.created_at,
        my_role=role,
        unread_count=unread,
        unread_mentions=mentions,
    )


@router.post("/rooms", status_code=201)
async def create_room(body: RoomCreate, user: CurrentUser, session: SessionDep) -> RoomOut:
    users = UserRepository(session)
    invitees = [i for i in dict.fromkeys(body.member_ids) if i != user.id]
    for invitee_id in invitees:
        invitee = await users.get(invitee_id)
        if invitee is None or invitee.org_id != user.org_id or invitee.status != "active":
            raise ApiError(422, "invalid_member", f"user {invitee_id} is not in your organisation")
    if body.kind == "direct" and len(invitees) != DIRECT_ROOM_MEMBERS - 1:
        raise ApiError(422, "invalid_request", "a direct room has exactly one other member")
    room = await RoomRepository(session).create(
        user.org_id, user.id, body.name, body.kind, body.topic, body.auto_route
    )
    members, events = MemberRepository(session), EventRepository(session)
    await events.append(room.id, "member.add", {"user_id": str(user.id), "role": "owner"})
    for invitee_id in invitees:
        await members.add(room.id, invitee_id, "member")
        await events.append(room.id, "member.add", {"user_id": str(invitee_id), "role": "member"})
    await session.commit()
    return room_out(room, "owner", 0, 0)


@router.get("/rooms")
async def list_rooms(
    user: CurrentUser,
    session: SessionDep,
    include_archived: bool = False,
    kind: Literal["direct", "group", "project", "api"] | None = None,
) -> dict[str, list[RoomOut]]:
    rows = await RoomRepository(session).list_for_user(user.id, include_archived, kind)
    return {"items": [room_out(*row) for row in rows]}


@router.get("/rooms/{room_id}")
async def get_room(room_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> RoomOut:
    room, role = await room_for_member(session, room_id, user)
    return room_out(room, role)


@router.put("/rooms/{room_id}")
async def update_room(
    room_id: uuid.UUID, body: RoomUpdate, user: CurrentUser, session: SessionDep
) -> RoomOut:
    room, role = await room_for_member(session, room_id, user)
    ensure_room_admin(role)
    changes: dict[str, Any] = body.model_dump(exclude_unset=True, exclude={"archived"})
    if body.archived is not None:
        changes["archived_at"] = datetime.now(UTC) if body.archived else None
    elif changes:
        ensure_writable(room)
    room = await RoomRepository(session).update(room, changes)
    await session.commit()
    return room_out(room, role)


@router.delete("/rooms/{room_id}", status_code=204)
async def delete_room(room_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> Response:
    _, role = await room_for_member(session, room_id, user)
    if role != "owner":
        raise ApiError(403, "forbidden", "only the room owner may delete it")
    # Delivered at commit, to every replica: open streams of the room end (its events go
    # with it, so this notice is ephemeral).
    await EventRepository(session).notify_ephemeral(
        room_id, "room.delete", {"room_id": str(room_id)}
    )
    await RoomRepository(session).delete(room_id)
    await session.commit()
    return Response(status_code=204)


@router.get("/rooms/{room_id}/members")
async def list_members(
    room_id: uuid.UUID, user: CurrentUser, session: SessionDep
) -> dict[str, list[MemberOut]]:
    await room_for_member(session, room_id, user)
    rows = await MemberRepository(session).list(room_id)
    return {
        "items": [
            MemberOut(
                user_id=m.user_id,
                name=u.name,
                handle=u.handle,
                role=m.role,
                joined_at=m.joined_at,
                last_read_message_id=m.last_read_message_id,
            )
            for m, u in rows
        ]
    }


async def _member_change(session: AsyncSession, room_id: uuid.UUID, user: User) -> tuple[Room, str]:
    """The room, locked for a member change, and the caller's role read under that lock.

    Members of an archived room are frozen with it (409 room_archived), like its messages.
    """
    await room_for_member(session, room_id, user)  # 404 for non-members before any lock
    members = MemberRepository(session)
    room = await members.lock_room(room_id)
    role = await members.role_of(room_id, user.id) if room is not None else None
    if room is None or role is None:  # deleted, or the caller removed, meanwhile
        raise ApiError(404, "room_not_found", "room not found")
    ensure_writable(room)
    return room, role


@router.post("/rooms/{room_id}/members", status_code=201)
async def add_member(
    room_id: uuid.UUID, body: MemberAdd, user: CurrentUser, session: SessionDep, response: Response
) -> dict[str, Any]:
    """201 when added; 200 with the member's current role when they were one already (use
    PATCH …/members/{user_id} to change a role)."""
    room, role = await _member_change(session, room_id, user)
    ensure_room_admin(role)
    if body.role == "owner" and role != "owner":
        raise ApiError(403, "forbidden", "only an owner may add another owner")
    target = await UserRepository(session).get(body.user_id)
    # Another org's users are indistinguishable from unknown ones: they join through invitations.
    if target is None or target.org_id != room.org_id or target.status != "active":
        raise ApiError(404, "user_not_found", "no such user in this organisation")
    members = MemberRepository(session)
    current = await members.role_of(room.id, target.id)
    if current is not None:
        response.status_code = 200
        return {"id": str(target.id), "user_id": str(target.id), "role": current, "added": False}
    if room.kind == "direct" and await members.count(room.id) >= DIRECT_ROOM_MEMBERS:
        raise ApiError(409, "direct_room_full", "a direct room has at most two members")
    await members.add(room.id, target.id, body.role)
    await EventRepository(session).append(
        room.id, "member.add", {"user_id": str(target.id), "role": body.role}
    )
    await session.commit()
    return {"id": str(target.id), "user_id": str(target.id), "role": body.role, "added": True}


@router.patch("/rooms/{room_id}/members/{user_id}")
async def change_member_role(
    room_id: uuid.UUID,
    user_id: uuid.UUID,
    body: MemberRoleUpdate,
    user: CurrentUser,
    session: SessionDep,
) -> dict[str, Any]:
    """Owners and admins change roles; only an owner makes or unmakes an owner, and a room
    keeps at least one owner. Emits member.update when the role changed."""
    room, role = await _member_change(session, room_id, user)
    ensure_room_admin(role)
    members = MemberRepository(session)
    current = await members.role_of(room.id, user_id)
    if current is None:
        raise ApiError(404, "not_a_member", "that user is not a member of this room")
    if role != "owner" and "owner" in (current, body.role):
        raise ApiError(403, "forbidden", "only an owner may promote to owner or demote an owner")
    changed = current != body.role
    if changed:
        if current == "owner" and await members.count_owners(room.id) <= 1:
            raise ApiError(
                409, "last_owner", "a room keeps at least one owner; promote another first"
            )
        await members.set_role(room.id, user_id, body.role)
        await EventRepository(session).append(
            room.id,
            "member.update",
            {"user_id": str(user_id), "role": body.role, "previous_role": current},
        )
        await session.commit()
    return {
        "id": str(user_id),
        "user_id": str(user_id),
        "role": body.role,
        "previous_role": current,
        "changed": changed,
    }


@router.delete("/rooms/{room_id}/members/{user_id}", status_code=204)
async def remove_member(
    room_id: uuid.UUID, user_id: uuid.UUID, user: CurrentUser, session: SessionDep
) -> Response:
    room, role = await _member_change(session, room_id, user)
    if user_id != user.id:  # anyone may leave; removing others needs owner/admin
        ensure_room_admin(role)
    members = MemberRepository(session)
    target_role = await members.role_of(room.id, user_id)
    if target_role is None:
        raise ApiError(404, "not_a_member", "that user is not a member of this room")
    if target_role == "owner" and await members.count_owners(room.id) <= 1:
        raise ApiError(409, "last_owner", "the last owner cannot leave; transfer ownership first")
    if target_role == "owner" and role != "owner":
        raise ApiError(403, "forbidden", "only an owner may remove an owner")
    await members.remove(room.id, user_id)
    await EventRepository(session).append(room.id, "member.remove", {"user_id": str(user_id)})
    await session.commit()
    return Response(status_code=204)
