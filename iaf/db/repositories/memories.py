"""A user's memories: what the user asked agents to remember, indexed like knowledge."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.models import Memory


class MemoryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(self, user_id: uuid.UUID, org_id: uuid.UUID, content: str) -> Memory:
        memory = Memory(user_id=user_id, org_id=org_id, content=content, status="pending")
        self.session.add(memory)
        await self.session.flush()
        await self.session.refresh(memory)
        return memory

    async def get(self, memory_id: uuid.UUID, *, for_update: bool = False) -> Memory | None:
        query = select(Memory).where(Memory.id == memory_id)
        if for_update:
            query = query.with_for_update()
        return await self.session.scalar(query.execution_options(populate_existing=True))

    async def list_for(self, user_id: uuid.UUID, limit: int, offset: int) -> list[Memory]:
        rows = await self.session.scalars(
            select(Memory)
            .where(Memory.user_id == user_id, Memory.status != "deleting")
            .order_by(Memory.created_at.desc(), Memory.id)
            .limit(limit)
            .offset(offset)
        )
        return list(rows)

    async def count_for(self, user_id: uuid.UUID) -> int:
        count = await self.session.scalar(
            select(func.count()).where(Memory.user_id == user_id, Memory.status != "deleting")
        )
        return int(count or 0)

    async def set_status(self, memory_id: uuid.UUID, status: str, **values: object) -> None:
        await self.session.execute(
            update(Memory).where(Memory.id == memory_id).values(status=status, **values)
        )

    async def delete(self, memory_id: uuid.UUID) -> None:
        await self.session.execute(delete(Memory).where(Memory.id == memory_id))

    async def ready_contents(
        self, memory_ids: list[uuid.UUID], user_id: uuid.UUID
    ) -> dict[uuid.UUID, str]:
        """Of these ids, the user's memories still in use (id -> text from Postgres)."""
        if not memory_ids:
            return {}
        rows = await self.session.execute(
            select(Memory.id, Memory.content).where(
                Memory.id.in_(memory_ids), Memory.user_id == user_id, Memory.status == "ready"
            )
        )
        return {r[0]: str(r[1]) for r in rows.all()}

    async def stale(self, older_than_seconds: float) -> list[Memory]:
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than_seconds)
        rows = await self.session.scalars(
            select(Memory)
            .where(Memory.status.in_(("pending", "deleting")), Memory.created_at < cutoff)
            .limit(200)
        )
        return list(rows)
