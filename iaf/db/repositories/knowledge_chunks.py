"""The chunks of knowledge documents: their text (what agents quote) and ingestion progress."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import delete, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.models import KnowledgeChunk, KnowledgeDocument

ChunkKey = tuple[uuid.UUID, int]


class KnowledgeChunkRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def store(self, document_id: uuid.UUID, first: int, texts: Sequence[str]) -> None:
        """Chunks `first`, `first + 1`, ... of the document (a retried batch overwrites)."""
        if not texts:
            return
        statement = insert(KnowledgeChunk).values(
            [
                {"document_id": document_id, "chunk": first + i, "content": text}
                for i, text in enumerate(texts)
            ]
        )
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=[KnowledgeChunk.document_id, KnowledgeChunk.chunk],
                set_={"content": statement.excluded.content},
            )
        )

    async def trim(self, document_id: uuid.UUID, count: int) -> None:
        """Drop chunks from `count` on (left by a longer earlier version of the document)."""
        await self.session.execute(
            delete(KnowledgeChunk).where(
                KnowledgeChunk.document_id == document_id, KnowledgeChunk.chunk >= count
            )
        )

    async def progress(self, document_id: uuid.UUID, done: int, total: int) -> bool:
        """Record progress; False when the document is no longer being ingested (deleted, or
        its removal began), so the caller stops and takes its points back."""
        changed = await self.session.execute(
            update(KnowledgeDocument)
            .where(KnowledgeDocument.id == document_id, KnowledgeDocument.status == "processing")
            .values(chunks_done=done, chunks_total=total, updated_at=func.now())
            .returning(KnowledgeDocument.id)
        )
        return changed.first() is not None

    async def texts(self, document_id: uuid.UUID) -> list[str]:
        rows = await self.session.scalars(
            select(KnowledgeChunk.content)
            .where(KnowledgeChunk.document_id == document_id)
            .order_by(KnowledgeChunk.chunk)
        )
        return list(rows)

    async def ready_passages(
        self, keys: Sequence[ChunkKey], org_id: uuid.UUID
    ) -> dict[ChunkKey, tuple[str, str]]:
        """Of these chunks, those of this org's ready documents: key -> (title, text)."""
        if not keys:
            return {}
        rows = await self.session.execute(
            select(
                KnowledgeChunk.document_id,
                KnowledgeChunk.chunk,
                KnowledgeDocument.title,
                KnowledgeChunk.content,
            )
            .join(KnowledgeDocument, KnowledgeDocument.id == KnowledgeChunk.document_id)
            .where(
                tuple_(KnowledgeChunk.document_id, KnowledgeChunk.chunk).in_(list(keys)),
                KnowledgeDocument.org_id == org_id,
                KnowledgeDocument.status == "ready",
            )
        )
        return {(r[0], int(r[1])): (str(r[2]), str(r[3])) for r in rows.all()}
