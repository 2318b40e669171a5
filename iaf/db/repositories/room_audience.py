"""Who reads what an agent writes in a room: its members, and which of them are guests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.models import Room, RoomMember, User


@dataclass(frozen=True)
class Audience:
    owner_only: bool
    members: frozenset[uuid.UUID]
    # Members from another organisation (they joined through an invitation).
    guests: frozenset[uuid.UUID]

    def private_to(self, user_id: uuid.UUID | None) -> bool:
        """Only this person reads the room, now and later."""
        return self.owner_only and user_id is not None and self.members == {user_id}


class RoomAudienceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def of(self, room: Room) -> Audience:
        rows = await self.session.execute(
            select(User.id, User.org_id)
            .join(RoomMember, RoomMember.user_id == User.id)
            .where(RoomMember.room_id == room.id)
        )
        members = {(r[0], r[1]) for r in rows.all()}
        return Audience(
            owner_only=room.owner_only,
            members=frozenset(m for m, _ in members),
            guests=frozenset(m for m, org in members if org != room.org_id),
        )

    async def of_room_id(self, room_id: uuid.UUID) -> Audience:
        room = await self.session.get(Room, room_id)
        if room is None:
            return Audience(False, frozenset(), frozenset())
        return await self.of(room)

    async def is_guest(self, room: Room, user_id: uuid.UUID) -> bool:
        org_id = await self.session.scalar(select(User.org_id).where(User.id == user_id))
        return org_id != room.org_id
