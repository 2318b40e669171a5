"""Room rules that more than one route applies (adding a member, accepting an invitation)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.models import Room
from iaf.db.repositories.members import MemberRepository
from iaf.errors import ApiError

DIRECT_ROOM_MEMBERS = 2


async def ensure_room_for_one_more(
    session: AsyncSession, room: Room, joining: uuid.UUID | None = None
) -> None:
    """A direct room holds at most two members (someone already in it may rejoin)."""
    if room.kind != "direct":
        return
    members = MemberRepository(session)
    if joining is not None and await members.role_of(room.id, joining) is not None:
        return
    if await members.count(room.id) >= DIRECT_ROOM_MEMBERS:
        raise ApiError(409, "direct_room_full", "a direct room has at most two members")
