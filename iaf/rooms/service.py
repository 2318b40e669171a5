"""Rooms and their members: who may see and manage a room, and the rules of member changes.

Only members see a room (anyone else gets the 404 of a room that does not exist); owners and
admins manage it; only an owner makes or unmakes an owner, and a room keeps one. Member
changes of one room run one after the other under a row lock, so those counts are taken on
committed data. Nothing here commits: the caller commits the request's transaction.

The kinds differ (docs/DESIGN.md, "Room kinds"): a direct room is two people, one per pair,
without roles to change, and keeps per-message read receipts; a group room has any number of
members, roles and invitations, and read markers only; a project room is a group room whose
topic is the project's brief, which agents read, and which auto-routes questions by default.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.models import Room, User
from iaf.db.repositories.members import MemberRepository
from iaf.db.repositories.read_receipts import ReadReceiptRepository
from iaf.db.repositories.room_events import EventRepository
from iaf.db.repositories.room_vector_removals import RoomVectorRemovalRepository
from iaf.db.repositories.rooms import RoomRepository
from iaf.db.repositories.user_events import UserEventRepository
from iaf.db.repositories.users import UserRepository
from iaf.errors import ApiError
from schemas.chat import MessageOut, ReadReceiptOut, RoomCreate, RoomUpdate

DIRECT_ROOM_MEMBERS = 2


async def room_for_member(
    session: AsyncSession, room_id: uuid.UUID, user: User
) -> tuple[Room, str]:
    """The room and the caller's role; 404 for non-members so room IDs reveal nothing."""
    found = await RoomRepository(session).get_for_member(room_id, user.id)
    if found is None:
        raise ApiError(404, "room_not_found", "room not found")
    return found


def ensure_writable(room: Room) -> None:
    if room.archived_at is not None:
        raise ApiError(409, "room_archived", "the room is archived and read-only")


def ensure_room_admin(role: str) -> None:
    if role not in ("owner", "admin"):
        raise ApiError(403, "forbidden", "only room owners and admins may do this")


async def ensure_room_for_one_more(
    session: AsyncSession, room: Room, joining: uuid.UUID | None = None
) -> None:
    """A direct room holds at most two members (someone already in it may rejoin); a room
    for its owner and agents only holds its owner (agents there read the owner's memories)."""
    members = MemberRepository(session)
    if joining is not None and await members.role_of(room.id, joining) is not None:
        return
    if room.owner_only:
        raise ApiError(
            409, "owner_only_room", "this room is for its owner and agents only: no one joins it"
        )
    if room.kind != "direct":
        return
    if await members.count(room.id) >= DIRECT_ROOM_MEMBERS:
        raise ApiError(409, "direct_room_full", "a direct room has at most two members")


async def create_room(session: AsyncSession, creator: User, body: RoomCreate) -> Room:
    """The creator owns it; the colleagues named join as members (a direct room: one, or none
    for a room with agents only)."""
    users = UserRepository(session)
    invitees = [i for i in dict.fromkeys(body.member_ids) if i != creator.id]
    for invitee_id in invitees:
        invitee = await users.get(invitee_id)
        if invitee is None or invitee.org_id != creator.org_id or invitee.status != "active":
            raise ApiError(422, "invalid_member", f"user {invitee_id} is not in your organisation")
    if body.kind == "direct" and len(invitees) > DIRECT_ROOM_MEMBERS - 1:
        raise ApiError(422, "invalid_request", "a direct room has at most one other member")
    # A direct room with no one else is its creator's with agents, and stays so.
    owner_only = body.kind == "direct" and not invitees
    auto_route = body.auto_route if body.auto_route is not None else body.kind == "project"
    room = await RoomRepository(session).create(
        creator.org_id,
        creator.id,
        body.name,
        body.kind,
        body.topic,
        auto_route,
        owner_only=owner_only,
    )
    members, events = MemberRepository(session), EventRepository(session)
    await events.append(room.id, "member.add", {"user_id": str(creator.id), "role": "owner"})
    for invitee_id in invitees:
        await members.add(room.id, invitee_id, "member")
        await events.append(room.id, "member.add", {"user_id": str(invitee_id), "role": "member"})
    return room


async def update_room(session: AsyncSession, room: Room, role: str, body: RoomUpdate) -> Room:
    """Owners and admins rename, describe, archive and unarchive; an archived room changes
    nothing else until it is unarchived."""
    ensure_room_admin(role)
    changes: dict[str, Any] = body.model_dump(exclude_unset=True, exclude={"archived"})
    if body.archived is not None:
        changes["archived_at"] = datetime.now(UTC) if body.archived else None
    elif changes:
        ensure_writable(room)
    room = await RoomRepository(session).update(room, changes)
    if changes:  # members' room lists (and open streams) show the new name, topic or state
        await EventRepository(session).append(room.id, "room.update", {"fields": sorted(changes)})
    return room


async def delete_room(session: AsyncSession, room: Room, role: str) -> None:
    """The room and everything in it; its documents' vectors are removed after the commit
    (RemoveVectors `unindex-room-{id}`, recorded here so a worker resumes it if need be)."""
    if role != "owner":
        raise ApiError(403, "forbidden", "only the room owner may delete it")
    room_id = room.id
    await RoomVectorRemovalRepository(session).add(room_id, room.org_id)
    # Delivered at commit, to every replica: open streams of the room end (its events go
    # with it, so this notice is ephemeral).
    await EventRepository(session).notify_ephemeral(
        room_id, "room.delete", {"room_id": str(room_id)}
    )
    await RoomRepository(session).delete(room_id)


async def lock_for_member_change(
    session: AsyncSession, room_id: uuid.UUID, user: User
) -> tuple[Room, str]:
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


async def add_member(
    session: AsyncSession, room: Room, role: str, user_id: uuid.UUID, new_role: str
) -> str | None:
    """Adds a colleague of the room's organisation; returns their current role instead when
    they are a member already (None when added)."""
    ensure_room_admin(role)
    if new_role == "owner" and role != "owner":
        raise ApiError(403, "forbidden", "only an owner may add another owner")
    target = await UserRepository(session).get(user_id)
    # Another org's users are indistinguishable from unknown ones: they join through invitations.
    if target is None or target.org_id != room.org_id or target.status != "active":
        raise ApiError(404, "user_not_found", "no such user in this organisation")
    members = MemberRepository(session)
    current = await members.role_of(room.id, target.id)
    if current is not None:
        return current
    await ensure_room_for_one_more(session, room)
    await members.add(room.id, target.id, new_role)
    await EventRepository(session).append(
        room.id, "member.add", {"user_id": str(target.id), "role": new_role}
    )
    return None


async def change_member_role(
    session: AsyncSession, room: Room, role: str, user_id: uuid.UUID, new_role: str
) -> str:
    """Returns the member's previous role; emits member.update when the role changed."""
    ensure_room_admin(role)
    if room.kind == "direct":
        raise ApiError(
            409, "direct_room_roles", "a direct room's two people have no roles to change"
        )
    members = MemberRepository(session)
    current = await members.role_of(room.id, user_id)
    if current is None:
        raise ApiError(404, "not_a_member", "that user is not a member of this room")
    if role != "owner" and "owner" in (current, new_role):
        raise ApiError(403, "forbidden", "only an owner may promote to owner or demote an owner")
    if current == new_role:
        return current
    if current == "owner" and await members.count_owners(room.id) <= 1:
        raise ApiError(409, "last_owner", "a room keeps at least one owner; promote another first")
    await members.set_role(room.id, user_id, new_role)
    await EventRepository(session).append(
        room.id,
        "member.update",
        {"user_id": str(user_id), "role": new_role, "previous_role": current},
    )
    return current


async def remove_member(
    session: AsyncSession, room: Room, role: str, caller_id: uuid.UUID, user_id: uuid.UUID
) -> None:
    """Anyone may leave; removing others needs an owner or admin (an owner, to remove one)."""
    if user_id != caller_id:
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


async def existing_direct_room(
    session: AsyncSession, creator: User, body: RoomCreate
) -> Room | None:
    """The direct room the creator already shares with the one colleague named, if any:
    opening a conversation with someone twice opens the same one."""
    invitees = {i for i in body.member_ids if i != creator.id}
    if body.kind != "direct" or len(invitees) != 1:
        return None
    return await RoomRepository(session).direct_room_between(
        creator.org_id, creator.id, invitees.pop()
    )


async def is_muted(session: AsyncSession, room: Room, user: User) -> bool:
    member = await MemberRepository(session).get(room.id, user.id)
    return bool(member and member.is_muted)


async def set_muted(session: AsyncSession, room: Room, user: User, muted: bool) -> None:
    """A personal setting: allowed in an archived room too. The person's other sessions hear
    of it on their own stream (room.update)."""
    if await MemberRepository(session).set_muted(room.id, user.id, muted):
        await UserEventRepository(session).append(user.id, "room.update", {"room_id": str(room.id)})


async def mark_read(session: AsyncSession, room: Room, user: User, message_id: int) -> int:
    """Moves the caller's read marker; in a direct room, also receipts each message of the
    other person up to it and tells the room (`message.read`, stored and replayed)."""
    before, stored = await MemberRepository(session).advance_read(room.id, user.id, message_id)
    if room.kind == "direct" and stored > before:
        read, at = await ReadReceiptRepository(session).record(room.id, user.id, before, stored)
        if read and at is not None:
            await EventRepository(session).append(
                room.id,
                "message.read",
                {"user_id": str(user.id), "message_ids": read, "read_at": at.isoformat()},
            )
    return stored


async def with_receipts(
    session: AsyncSession, room: Room, messages: list[MessageOut]
) -> list[MessageOut]:
    """Direct rooms show who read each message and when; other kinds show nothing."""
    if room.kind != "direct":
        return messages
    receipts = await ReadReceiptRepository(session).for_messages(room.id, [m.id for m in messages])
    return [
        m.model_copy(
            update={
                "read_by": [
                    ReadReceiptOut.model_validate(r, from_attributes=True)
                    for r in receipts.get(m.id, [])
                ]
            }
        )
        for m in messages
    ]
