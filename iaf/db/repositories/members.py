"""Room members: roles, read markers, and the lock that serialises a room's member changes."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.models import Room, RoomMember, User

# The marker before and after, in one statement (the row lock orders concurrent readers).
_ADVANCE_READ = text(
    "UPDATE room_members m"
    " SET last_read_message_id = greatest(coalesce(o.old, 0), :message_id)"
    " FROM (SELECT room_id, user_id, last_read_message_id AS old FROM room_members"
    "       WHERE room_id = :room_id AND user_id = :user_id FOR UPDATE) o"
    " WHERE m.room_id = o.room_id AND m.user_id = o.user_id"
    " RETURNING o.old, m.last_read_message_id"
)


class MemberRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def list(self, room_id: uuid.UUID) -> list[tuple[RoomMember, User]]:
        rows = await self.session.execute(
            select(RoomMember, User)
            .join(User, User.id == RoomMember.user_id)
            .where(RoomMember.room_id == room_id)
            .order_by(RoomMember.joined_at)
        )
        return [(r[0], r[1]) for r in rows.all()]

    async def add(self, room_id: uuid.UUID, user_id: uuid.UUID, role: str) -> bool:
        """True when the user was not a member before (idempotent add)."""
        result = await self.session.execute(
            pg_insert(RoomMember)
            .values(room_id=room_id, user_id=user_id, role=role)
            .on_conflict_do_nothing()
            .returning(RoomMember.user_id)
        )
        return result.first() is not None

    async def lock_room(self, room_id: uuid.UUID) -> Room | None:
        """Serialise the member changes of one room, and read the room fresh under the lock.

        FOR NO KEY UPDATE: posting (whose foreign key takes FOR KEY SHARE) is not held up,
        but two member changes of the same room run one after the other, so "the last
        owner" and "a direct room's two members" are counted on committed data.
        """
        return await self.session.scalar(
            select(Room)
            .where(Room.id == room_id)
            .with_for_update(key_share=True)
            .execution_options(populate_existing=True)
        )

    async def role_of(self, room_id: uuid.UUID, user_id: uuid.UUID) -> str | None:
        role = await self.session.scalar(
            select(RoomMember.role).where(
                RoomMember.room_id == room_id, RoomMember.user_id == user_id
            )
        )
        return str(role) if role is not None else None

    async def set_role(self, room_id: uuid.UUID, user_id: uuid.UUID, role: str) -> bool:
        result = await self.session.execute(
            update(RoomMember)
            .where(RoomMember.room_id == room_id, RoomMember.user_id == user_id)
            .values(role=role)
            .returning(RoomMember.user_id)
        )
        return result.first() is not None

    async def count(self, room_id: uuid.UUID) -> int:
        return int(
            await self.session.scalar(select(func.count()).where(RoomMember.room_id == room_id))
            or 0
        )

    async def remove(self, room_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        result = await self.session.execute(
            delete(RoomMember)
            .where(RoomMember.room_id == room_id, RoomMember.user_id == user_id)
            .returning(RoomMember.user_id)
        )
        return result.first() is not None

    async def count_owners(self, room_id: uuid.UUID) -> int:
        return int(
            await self.session.scalar(
                select(func.count()).where(
                    RoomMember.room_id == room_id, RoomMember.role == "owner"
                )
            )
            or 0
        )

    async def get(self, room_id: uuid.UUID, user_id: uuid.UUID) -> RoomMember | None:
        return await self.session.scalar(
            select(RoomMember)
            .where(RoomMember.room_id == room_id, RoomMember.user_id == user_id)
            .execution_options(populate_existing=True)
        )

    async def set_muted(self, room_id: uuid.UUID, user_id: uuid.UUID, muted: bool) -> bool:
        """True when the member's setting changed."""
        result = await self.session.execute(
            update(RoomMember)
            .where(
                RoomMember.room_id == room_id,
                RoomMember.user_id == user_id,
                RoomMember.is_muted.is_not(muted),
            )
            .values(is_muted=muted)
            .returning(RoomMember.user_id)
        )
        return result.first() is not None

    async def advance_read(
        self, room_id: uuid.UUID, user_id: uuid.UUID, message_id: int
    ) -> tuple[int, int]:
        """Moves the read marker forward; returns (the marker before, the marker now)."""
        result = await self.session.execute(
            _ADVANCE_READ, {"room_id": room_id, "user_id": user_id, "message_id": message_id}
        )
        old, stored = result.one()
        return int(old or 0), int(stored or 0)

    async def mark_read(self, room_id: uuid.UUID, user_id: uuid.UUID, message_id: int) -> int:
        """Read markers only move forward; returns the marker now stored."""
        new = func.greatest(func.coalesce(RoomMember.last_read_message_id, 0), message_id)
        result = await self.session.execute(
            update(RoomMember)
            .where(RoomMember.room_id == room_id, RoomMember.user_id == user_id)
            .values(last_read_message_id=new)
            .returning(RoomMember.last_read_message_id)
        )
        return int(result.scalar_one() or 0)
