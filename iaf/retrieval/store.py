"""The two Qdrant collections agents read, behind the filters that keep tenants apart.

- "knowledge": one point per document chunk, payload {org_id, room_id, document_id, owner_id,
  chunk, text}; room_id is null for organisation-wide documents.
- "memories": one point per memory, payload {user_id, org_id, memory_id, text}.

The same code talks to a Qdrant server (QDRANT_URL) or to local mode under data_dir.
Every search is filtered by organisation; knowledge search additionally by room (org-wide
documents or this room's), memory search by the requesting user.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from qdrant_client import AsyncQdrantClient, models

from iaf.retrieval.qdrant import is_local

KNOWLEDGE = "knowledge"
MEMORIES = "memories"
_INDEXED_KEYS = {
    KNOWLEDGE: ("org_id", "room_id", "document_id", "owner_id"),
    MEMORIES: ("user_id", "org_id", "memory_id"),
}
# Points of one document are derived from its id, so re-ingesting overwrites, never duplicates.
_CHUNK_NAMESPACE = uuid.UUID("6f1c3f0e-3a8e-4a51-9a55-2a7d0c1b9e11")


@dataclass(frozen=True)
class Hit:
    point_id: str
    score: float
    payload: dict[str, Any]


def chunk_point_id(document_id: uuid.UUID | str, chunk: int) -> str:
    return str(uuid.uuid5(_CHUNK_NAMESPACE, f"{document_id}:{chunk}"))


def _match(key: str, value: str) -> models.FieldCondition:
    return models.FieldCondition(key=key, match=models.MatchValue(value=value))


def knowledge_filter(org_id: str, room_id: str | None, include_org: bool) -> models.Filter:
    """org_id AND (org-wide document OR this room's document)."""
    scopes: list[models.Condition] = []
    if include_org:
        scopes.append(models.IsNullCondition(is_null=models.PayloadField(key="room_id")))
    if room_id is not None:
        scopes.append(_match("room_id", room_id))
    if not scopes:
        # Nothing may match: a condition no point satisfies.
        scopes.append(_match("document_id", "-"))
    return models.Filter(must=[_match("org_id", org_id), models.Filter(should=scopes)])


class VectorStore:
    def __init__(self, client: AsyncQdrantClient) -> None:
        self.client = client
        self._known: set[str] = set()

    async def ensure(self, collection: str, size: int) -> None:
        """Create the collection (cosine, `size` dimensions) if it does not exist yet."""
        if collection in self._known:
            return
        if not await self.client.collection_exists(collection):
            try:
                await self.client.create_collection(
                    collection,
                    vectors_config=models.VectorParams(size=size, distance=models.Distance.COSINE),
                )
            except Exception:
                # Another worker created it meanwhile (a conflict); anything else is real.
                if not await self.client.collection_exists(collection):
                    raise
            await self._index_payload(collection)
        info = await self.client.get_collection(collection)
        vectors = info.config.params.vectors
        existing = vectors.size if isinstance(vectors, models.VectorParams) else None
        if existing is not None and existing != size:
            raise RuntimeError(
                f"collection {collection!r} holds {existing}-dimension vectors, the embedder"
                f" makes {size}: re-create it after changing embedding_model"
            )
        self._known.add(collection)

    async def _index_payload(self, collection: str) -> None:
        if self._local:
            return  # local mode scans; payload indexes only matter on a server
        for key in _INDEXED_KEYS.get(collection, ()):
            await self.client.create_payload_index(
                collection, field_name=key, field_schema=models.PayloadSchemaType.KEYWORD
            )

    @property
    def _local(self) -> bool:
        return is_local(self.client) or (
            type(getattr(self.client, "_client", None)).__name__ == "AsyncQdrantLocal"
        )

    async def upsert(
        self, collection: str, points: Sequence[tuple[str, list[float], dict[str, Any]]]
    ) -> None:
        if not points:
            return
        await self.client.upsert(
            collection,
            points=[models.PointStruct(id=pid, vector=vec, payload=pl) for pid, vec, pl in points],
            wait=True,
        )

    async def delete_where(
        self, collection: str, key: str, value: str, *, min_chunk: int | None = None
    ) -> None:
        """Delete the points whose payload `key` equals `value` (and chunk >= min_chunk)."""
        if not await self.client.collection_exists(collection):
            return
        must: list[models.Condition] = [_match(key, value)]
        if min_chunk is not None:
            must.append(models.FieldCondition(key="chunk", range=models.Range(gte=min_chunk)))
        await self.client.delete(
            collection,
            points_selector=models.FilterSelector(filter=models.Filter(must=must)),
            wait=True,
        )

    async def count_where(self, collection: str, key: str, value: str) -> int:
        if not await self.client.collection_exists(collection):
            return 0
        selector = models.Filter(must=[_match(key, value)])
        return (await self.client.count(collection, count_filter=selector, exact=True)).count

    async def search(
        self, collection: str, vector: list[float], query_filter: models.Filter, limit: int
    ) -> list[Hit]:
        if limit <= 0 or not await self.client.collection_exists(collection):
            return []
        response = await self.client.query_points(
            collection, query=vector, query_filter=query_filter, limit=limit, with_payload=True
        )
        return [Hit(str(p.id), float(p.score), dict(p.payload or {})) for p in response.points]

    async def search_knowledge(
        self, vector: list[float], org_id: str, room_id: str | None, include_org: bool, limit: int
    ) -> list[Hit]:
        return await self.search(
            KNOWLEDGE, vector, knowledge_filter(org_id, room_id, include_org), limit
        )

    async def search_memories(
        self, vector: list[float], user_id: str, org_id: str, limit: int
    ) -> list[Hit]:
        selector = models.Filter(must=[_match("user_id", user_id), _match("org_id", org_id)])
        return await self.search(MEMORIES, vector, selector, limit)
