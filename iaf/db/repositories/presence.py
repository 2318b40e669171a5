"""SSE presence leases: which people have a live stream open on some API process."""

from __future__ import annotations

import uuid
from collections.abc import Collection

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_RENEW = text(
    "INSERT INTO user_presence (user_id, process_id, online_until)"
    " SELECT u.id, :process_id, now() + make_interval(secs => :lease)"
    " FROM users u WHERE u.id = ANY(CAST(:users AS uuid[]))"
    " ON CONFLICT (user_id, process_id) DO UPDATE SET online_until = excluded.online_until"
)


class PresenceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def renew(
        self, process_id: uuid.UUID, user_ids: Collection[uuid.UUID], lease_seconds: float
    ) -> None:
        if user_ids:
            await self.session.execute(
                _RENEW,
                {
                    "process_id": process_id,
                    "users": [str(u) for u in user_ids],
                    "lease": lease_seconds,
                },
            )

    async def leave(self, process_id: uuid.UUID, user_id: uuid.UUID) -> None:
        await self.session.execute(
            text("DELETE FROM user_presence WHERE process_id = :process_id AND user_id = :user_id"),
            {"process_id": process_id, "user_id": user_id},
        )

    async def drop_process(self, process_id: uuid.UUID) -> None:
        """A process stopping: its people are offline unless another process has them."""
        await self.session.execute(
            text("DELETE FROM user_presence WHERE process_id = :process_id"),
            {"process_id": process_id},
        )

    async def online(self, user_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
        rows = await self.session.scalars(
            text(
                "SELECT DISTINCT user_id FROM user_presence"
                " WHERE user_id = ANY(CAST(:users AS uuid[])) AND online_until > now()"
            ),
            {"users": [str(u) for u in user_ids]},
        )
        return set(rows)
