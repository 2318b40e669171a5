"""Rooms, listed for a member with their unread counts."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import case, delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.models import Message, Room, RoomMember


class RoomRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(
        self,
        org_id: uuid.UUID,
        creator_id: uuid.UUID,
        name: str,
        kind: str,
        topic: str,
        auto_route: bool,
        *,
        owner_only: bool = False,
    ) -> Room:
        room = Room(
            org_id=org_id,
            name=name,
            kind=kind,
            topic=topic,
            auto_route=auto_route,
            created_by=creator_id,
            owner_only=owner_only,
        )
        self.session.add(room)
        await self.session.flush()
        self.session.add(RoomMember(room_id=room.id, user_id=creator_id, role="owner"))
        await self.session.flush()
        return room

    async def get_for_member(
        self, room_id: uuid.UUID, user_id: uuid.UUID
    ) -> tuple[Room, str] | None:
        """The room and the caller's role, or None when the caller is not a member."""
        row = (
            await self.session.execute(
                select(Room, RoomMember.role)
                .join(RoomMember, RoomMember.room_id == Room.id)
                .where(Room.id == room_id, RoomMember.user_id == user_id)
            )
        ).first()
        return (row[0], str(row[1])) if row else None

    async def list_for_user(
        self, user_id: uuid.UUID, include_archived: bool, kind: str | None = None
    ) -> list[tuple[Room, str, int, int, bool]]:
        """The caller's rooms with unread messages, unread mentions of the caller (by name or
        @all; none in a room they muted) and whether they muted it; OpenAI-API conversations
        (kind "api") only when asked for."""
        unread_where = (
            Message.room_id == Room.id,
            Message.id > func.coalesce(RoomMember.last_read_message_id, 0),
            Message.deleted_at.is_(None),
            func.coalesce(Message.sender_user_id != user_id, True),
        )
        mentions = Message.meta["mentions"]
        unread = (
            select(func.count(Message.id))
            .where(*unread_where)
            .correlate(Room, RoomMember)
            .scalar_subquery()
        )
        unread_mentions = (
            select(func.count(Message.id))
            .where(
                *unread_where,
                mentions.contains([{"kind": "user", "id": str(user_id)}])
                | mentions.contains([{"kind": "all"}]),
            )
            .correlate(Room, RoomMember)
            .scalar_subquery()
        )
        query = (
            select(
                Room,
                RoomMember.role,
                unread,
                case((RoomMember.is_muted, 0), else_=unread_mentions),
                RoomMember.is_muted,
            )
            .join(RoomMember, RoomMember.room_id == Room.id)
            .where(RoomMember.user_id == user_id)
            .where(Room.kind == kind if kind else Room.kind != "api")
            .order_by(Room.created_at.desc())
        )
        if not include_archived:
            query = query.where(Room.archived_at.is_(None))
        rows = (await self.session.execute(query)).all()
        return [(r[0], str(r[1]), int(r[2]), int(r[3]), bool(r[4])) for r in rows]

    async def direct_room_between(
        self, org_id: uuid.UUID, first: uuid.UUID, second: uuid.UUID
    ) -> Room | None:
        """The open direct room these two people share, if any. Takes a lock on the pair
        for the transaction, so two requests to open it create one room, not two."""
        low, high = sorted((str(first), str(second)))
        await self.session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:pair, 13))"),
            {"pair": f"direct:{low}:{high}"},
        )
        both = (
            select(RoomMember.room_id)
            .where(RoomMember.user_id.in_((first, second)))
            .group_by(RoomMember.room_id)
            .having(func.count() == 2)
        )
        alone = select(RoomMember.room_id).group_by(RoomMember.room_id).having(func.count() == 2)
        return await self.session.scalar(
            select(Room)
            .where(
                Room.org_id == org_id,
                Room.kind == "direct",
                Room.archived_at.is_(None),
                Room.id.in_(both),
                Room.id.in_(alone),
            )
            .order_by(Room.created_at)
            .limit(1)
        )

    async def update(self, room: Room, changes: dict[str, Any]) -> Room:
        for key, value in changes.items():
            setattr(room, key, value)
        await self.session.flush()
        return room

    async def delete(self, room_id: uuid.UUID) -> None:
        await self.session.execute(delete(Room).where(Room.id == room_id))
