"""Deleted rooms whose knowledge vectors are still to be removed (rule 5 for a deletion)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.models import RoomVectorRemoval


class RoomVectorRemovalRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, room_id: uuid.UUID, org_id: uuid.UUID) -> None:
        await self.session.execute(
            pg_insert(RoomVectorRemoval)
            .values(room_id=room_id, org_id=org_id)
            .on_conflict_do_nothing(index_elements=["room_id"])
        )

    async def done(self, room_id: uuid.UUID) -> None:
        await self.session.execute(
            delete(RoomVectorRemoval).where(RoomVectorRemoval.room_id == room_id)
        )

    async def stale(self, older_than_seconds: float) -> list[RoomVectorRemoval]:
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than_seconds)
        rows = await self.session.scalars(
            select(RoomVectorRemoval).where(RoomVectorRemoval.created_at < cutoff).limit(200)
        )
        return list(rows)
