"""Writing documents and memories into the vector store: ingestion and `iaf reindex` share it.

A document is chunked, then embedded and stored batch by batch: while one batch's points and
chunk texts are written, the next batch embeds on the embedder's thread. After each batch the
document's `chunks_done` moves forward in the same transaction as the chunk texts, so clients
see progress and a retried activity resumes after the last batch stored (point ids and chunk
numbers are derived from the document, so a batch written twice is overwritten, never
doubled). A batch also confirms the document is still being ingested: a removal that started
meanwhile wins, and the points written so far are taken back.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from iaf.db.models import KnowledgeDocument
from iaf.db.repositories.knowledge import KnowledgeRepository
from iaf.db.repositories.knowledge_chunks import KnowledgeChunkRepository
from iaf.db.repositories.memories import MemoryRepository
from iaf.retrieval.chunker import chunk_text
from iaf.retrieval.embedder import Embedder
from iaf.retrieval.store import KNOWLEDGE, MEMORIES, Indexed, VectorStore, chunk_point_id
from iaf.settings import Settings

# Chunks per embedding call and per write: large enough to keep the model busy, small enough
# that progress moves every second or so and a store call stays short.
BATCH = 64


@dataclass(frozen=True)
class Outcome:
    status: str  # ready | gone | deleting | failed | processing ...
    chunks: int = 0


class KnowledgeIndexer:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        store: VectorStore,
        embedder: Embedder,
        settings: Settings,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.store = store
        self.embedder = embedder
        self.settings = settings

    async def document(
        self,
        document_id: uuid.UUID,
        *,
        rebuild: bool = False,
        resume_at: int = 0,
        on_batch: Callable[[int], None] = lambda done: None,
    ) -> Outcome:
        """Index one document; `rebuild` also redoes a ready one (`iaf reindex`)."""
        started = await self._begin(document_id, rebuild, resume_at)
        if isinstance(started, Outcome):
            return started
        payload, chunks = started
        await self.store.ensure(KNOWLEDGE, await self.embedder.dimension())
        done = await self._write_batches(document_id, payload, chunks, resume_at, on_batch)
        if done < len(chunks):
            return await self._take_back(document_id)
        return await self._finish(document_id, len(chunks))

    async def _begin(
        self, document_id: uuid.UUID, rebuild: bool, resume_at: int
    ) -> Outcome | tuple[dict[str, Any], list[str]]:
        async with self.sessionmaker() as session:
            knowledge = KnowledgeRepository(session)
            document = await knowledge.get(document_id)
            if document is None:
                return Outcome("gone")
            if document.status == "deleting" or (document.status == "ready" and not rebuild):
                return Outcome(document.status, document.chunk_count)
            chunks = chunk_text(
                document.content,
                self.settings.knowledge_chunk_chars,
                self.settings.knowledge_chunk_overlap_chars,
            )
            resume_at = min(resume_at, len(chunks))
            await knowledge.set_status(
                document.id,
                "processing",
                error=None,
                chunks_total=len(chunks),
                chunks_done=resume_at,
            )
            await session.commit()
            return _payload(document), chunks

    async def _write_batches(
        self,
        document_id: uuid.UUID,
        payload: dict[str, Any],
        chunks: list[str],
        start: int,
        on_batch: Callable[[int], None],
    ) -> int:
        """Embed and store from chunk `start` on; the count stored, short if a removal began."""
        starts = list(range(start, len(chunks), BATCH))
        embedding = self._embed(chunks, starts[0]) if starts else None
        for position, first in enumerate(starts):
            assert embedding is not None
            vectors = await embedding
            following = starts[position + 1] if position + 1 < len(starts) else None
            embedding = self._embed(chunks, following) if following is not None else None
            texts = chunks[first : first + BATCH]
            try:
                items = [
                    Indexed(
                        chunk_point_id(document_id, first + i),
                        vector,
                        text,
                        {**payload, "chunk": first + i},
                    )
                    for i, (text, vector) in enumerate(zip(texts, vectors, strict=True))
                ]
                await self.store.upsert(KNOWLEDGE, items)
                if not await self._record(document_id, first, texts, len(chunks)):
                    return first
            except BaseException:
                if embedding is not None:
                    embedding.cancel()
                raise
            on_batch(first + len(texts))
        return len(chunks)

    def _embed(self, chunks: list[str], first: int) -> asyncio.Future[list[list[float]]]:
        return asyncio.ensure_future(self.embedder.embed(chunks[first : first + BATCH]))

    async def _record(
        self, document_id: uuid.UUID, first: int, texts: list[str], total: int
    ) -> bool:
        async with self.sessionmaker() as session:
            chunks = KnowledgeChunkRepository(session)
            if not await chunks.progress(document_id, first + len(texts), total):
                return False
            await chunks.store(document_id, first, texts)
            await session.commit()
        return True

    async def _take_back(self, document_id: uuid.UUID) -> Outcome:
        """The document was deleted or its removal began: drop what this run wrote."""
        await self.store.delete_where(KNOWLEDGE, "document_id", str(document_id))
        async with self.sessionmaker() as session:
            document = await KnowledgeRepository(session).get(document_id)
        return Outcome("gone" if document is None else document.status)

    async def _finish(self, document_id: uuid.UUID, count: int) -> Outcome:
        """Under the row lock (a removal waits): drop chunks past the end, mark ready."""
        async with self.sessionmaker() as session:
            knowledge = KnowledgeRepository(session)
            document = await knowledge.get(document_id, for_update=True)
            if document is None or document.status != "processing":
                await session.rollback()
                return await self._take_back(document_id)
            await self.store.delete_where(
                KNOWLEDGE, "document_id", str(document_id), min_chunk=count
            )
            await KnowledgeChunkRepository(session).trim(document_id, count)
            await knowledge.set_status(
                document_id,
                "ready",
                chunk_count=count,
                chunks_done=count,
                chunks_total=count,
                embedding_model=self.embedder.model_name,
                indexed_at=datetime.now(UTC),
            )
            await session.commit()
        return Outcome("ready", count)

    async def memory(self, memory_id: uuid.UUID, *, rebuild: bool = False) -> Outcome:
        """Embed one memory; the point carries ids only (the text stays in its row)."""
        async with self.sessionmaker() as session:
            memory = await MemoryRepository(session).get(memory_id)
            wanted = ("pending", "ready") if rebuild else ("pending",)
            if memory is None or memory.status not in wanted:
                return Outcome("gone" if memory is None else memory.status)
            text, user_id, org_id = memory.content, memory.user_id, memory.org_id
        vector = (await self.embedder.embed([text]))[0]
        await self.store.ensure(MEMORIES, await self.embedder.dimension())
        async with self.sessionmaker() as session:
            memories = MemoryRepository(session)
            memory = await memories.get(memory_id, for_update=True)
            if memory is None or memory.status not in wanted:
                return Outcome("gone" if memory is None else memory.status)
            payload = {"user_id": str(user_id), "org_id": str(org_id), "memory_id": str(memory_id)}
            await self.store.upsert(MEMORIES, [Indexed(str(memory_id), vector, text, payload)])
            await memories.set_status(memory_id, "ready", indexed_at=datetime.now(UTC))
            await session.commit()
        return Outcome("ready")


def _payload(document: KnowledgeDocument) -> dict[str, Any]:
    return {
        "org_id": str(document.org_id),
        "room_id": str(document.room_id) if document.room_id else None,
        "document_id": str(document.id),
        "owner_id": str(document.owner_id),
    }
