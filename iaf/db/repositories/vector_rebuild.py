"""What `iaf reindex` rebuilds: the documents and memories that have vectors when ready."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.models import KnowledgeDocument, Memory


class VectorRebuildRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def ready_documents(self) -> list[uuid.UUID]:
        rows = await self.session.scalars(
            select(KnowledgeDocument.id)
            .where(KnowledgeDocument.status == "ready")
            .order_by(KnowledgeDocument.created_at, KnowledgeDocument.id)
        )
        return list(rows)

    async def ready_memories(self) -> list[uuid.UUID]:
        rows = await self.session.scalars(
            select(Memory.id).where(Memory.status == "ready").order_by(Memory.created_at, Memory.id)
        )
        return list(rows)
