"""Rooms and their members: only members see a room; owners and admins manage it.

The rules live in iaf.rooms.service; each route checks the caller, calls it and commits.
"""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter, Response

from api.deps import CurrentUser, SessionDep, StateDep
from api.ratelimit import DAY_SECONDS
from iaf.db.repositories.members import MemberRepository
from iaf.db.repositories.rooms import RoomRepository
from iaf.rooms import service as rooms
from iaf.workflow_calls import best_effort, start_vector_job
from schemas.chat import (
    MemberAdd,
    MemberAdded,
    MemberOut,
    MemberRoleChanged,
    MemberRoleUpdate,
    MembershipOut,
    MembershipUpdate,
    RoomCreate,
    RoomOut,
    RoomUpdate,
)

router = APIRouter(prefix="/api/chat", tags=["rooms"])


@router.post("/rooms", status_code=201)
async def create_room(
    body: RoomCreate, user: CurrentUser, session: SessionDep, state: StateDep, response: Response
) -> RoomOut:
    """201 with the new room; 200 with the direct room the caller already shares with the
    colleague named (one direct room per pair, not counted against the daily limit)."""
    existing = await rooms.existing_direct_room(session, user, body)
    if existing is not None:
        response.status_code = 200
        room, role = await rooms.room_for_member(session, existing.id, user)
        muted = await rooms.is_muted(session, room, user)
        await session.commit()
        return RoomOut.of(room, role, muted=muted)
    limit = state.settings.rooms_per_day
    await state.limiter.hit(f"rooms:{user.id}", limit, DAY_SECONDS, response, session)
    room = await rooms.create_room(session, user, body)
    await session.commit()
    return RoomOut.of(room, "owner", 0, 0)


@router.get("/rooms")
async def list_rooms(
    user: CurrentUser,
    session: SessionDep,
    include_archived: bool = False,
    kind: Literal["direct", "group", "project", "api"] | None = None,
) -> dict[str, list[RoomOut]]:
    rows = await RoomRepository(session).list_for_user(user.id, include_archived, kind)
    return {"items": [RoomOut.of(*row) for row in rows]}


@router.get("/rooms/{room_id}")
async def get_room(room_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> RoomOut:
    room, role = await rooms.room_for_member(session, room_id, user)
    return RoomOut.of(room, role, muted=await rooms.is_muted(session, room, user))


@router.patch("/rooms/{room_id}/membership")
async def update_membership(
    room_id: uuid.UUID, body: MembershipUpdate, user: CurrentUser, session: SessionDep
) -> MembershipOut:
    """The caller's own settings in the room: `is_muted` (no mention badge, no notification)."""
    room, _ = await rooms.room_for_member(session, room_id, user)
    await rooms.set_muted(session, room, user, body.is_muted)
    member = await MemberRepository(session).get(room.id, user.id)
    await session.commit()
    return MembershipOut.model_validate(member, from_attributes=True)


@router.put("/rooms/{room_id}")
async def update_room(
    room_id: uuid.UUID, body: RoomUpdate, user: CurrentUser, session: SessionDep
) -> RoomOut:
    room, role = await rooms.room_for_member(session, room_id, user)
    room = await rooms.update_room(session, room, role, body)
    muted = await rooms.is_muted(session, room, user)
    await session.commit()
    return RoomOut.of(room, role, muted=muted)


@router.delete("/rooms/{room_id}", status_code=204)
async def delete_room(
    room_id: uuid.UUID, user: CurrentUser, session: SessionDep, state: StateDep
) -> Response:
    room, role = await rooms.room_for_member(session, room_id, user)
    await rooms.delete_room(session, room, role)
    await session.commit()
    await best_effort(
        f"RemoveVectors for room {room_id}",
        start_vector_job(
            state.temporal, state.settings, "room", room_id, user.id, removal=True, room_id=room_id
        ),
    )
    return Response(status_code=204)


@router.get("/rooms/{room_id}/members")
async def list_members(
    room_id: uuid.UUID, user: CurrentUser, session: SessionDep
) -> dict[str, list[MemberOut]]:
    await rooms.room_for_member(session, room_id, user)
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


@router.post("/rooms/{room_id}/members", status_code=201)
async def add_member(
    room_id: uuid.UUID,
    body: MemberAdd,
    user: CurrentUser,
    session: SessionDep,
    state: StateDep,
    response: Response,
) -> MemberAdded:
    """201 when added; 200 with the member's current role when they were one already (use
    PATCH …/members/{user_id} to change a role)."""
    room, role = await rooms.lock_for_member_change(session, room_id, user)
    current = await rooms.add_member(session, room, role, body.user_id, body.role)
    if current is not None:
        response.status_code = 200
        return MemberAdded(id=body.user_id, user_id=body.user_id, role=current, added=False)
    limit = state.settings.member_additions_per_day
    await state.limiter.hit(f"member-add:{user.id}", limit, DAY_SECONDS, response, session)
    await session.commit()
    return MemberAdded(id=body.user_id, user_id=body.user_id, role=body.role, added=True)


@router.patch("/rooms/{room_id}/members/{user_id}")
async def change_member_role(
    room_id: uuid.UUID,
    user_id: uuid.UUID,
    body: MemberRoleUpdate,
    user: CurrentUser,
    session: SessionDep,
) -> MemberRoleChanged:
    """Owners and admins change roles; only an owner makes or unmakes an owner, and a room
    keeps at least one owner. Emits member.update when the role changed."""
    room, role = await rooms.lock_for_member_change(session, room_id, user)
    previous = await rooms.change_member_role(session, room, role, user_id, body.role)
    await session.commit()
    return MemberRoleChanged(
        id=user_id,
        user_id=user_id,
        role=body.role,
        previous_role=previous,
        changed=previous != body.role,
    )


@router.delete("/rooms/{room_id}/members/{user_id}", status_code=204)
async def remove_member(
    room_id: uuid.UUID, user_id: uuid.UUID, user: CurrentUser, session: SessionDep
) -> Response:
    room, role = await rooms.lock_for_member_change(session, room_id, user)
    await rooms.remove_member(session, room, role, user.id, user_id)
    await session.commit()
    return Response(status_code=204)
