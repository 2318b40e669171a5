"""A person's own event log (user_events): replay after an id, the newest id, their rooms."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


class UserEventRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def after(
        self, user_id: uuid.UUID, after_id: int, limit: int
    ) -> list[tuple[int, str, dict[str, Any]]]:
        rows = await self.session.execute(
            text(
                "SELECT id, type, data FROM user_events"
                " WHERE user_id = :user_id AND id > :after AND id IS NOT NULL"
                " ORDER BY id LIMIT :limit"
            ),
            {"user_id": user_id, "after": after_id, "limit": limit},
        )
        return [(int(r[0]), str(r[1]), dict(r[2])) for r in rows]

    async def latest_id(self, user_id: uuid.UUID) -> int:
        found = await self.session.scalar(
            text("SELECT coalesce(max(id), 0) FROM user_events WHERE user_id = :user_id"),
            {"user_id": user_id},
        )
        return int(found or 0)

    async def rooms_of(self, user_id: uuid.UUID) -> list[uuid.UUID]:
        """The rooms whose new messages the person's stream counts as unread."""
        rows = await self.session.scalars(
            text("SELECT room_id FROM room_members WHERE user_id = :user_id"), {"user_id": user_id}
        )
        return list(rows)
