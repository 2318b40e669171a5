"""The two collections agents read, behind the filters that keep tenants apart.

- "knowledge": one point per document chunk, payload {org_id, room_id, document_id, owner_id,
  chunk}; room_id is null for organisation-wide documents. The chunk's text is in PostgreSQL
  (knowledge_chunks).
- "memories": one point per memory, payload {user_id, org_id, memory_id}; the text is the
  memory row's.

Every search is filtered by organisation; knowledge search additionally by room (org-wide
documents or this room's), memory search by the requesting user. Searches are hybrid by
default: the dense embedding and BM25 sparse vectors, fused by reciprocal rank.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from iaf.retrieval.sparse import SparseEncoder
from iaf.retrieval.vectors import (
    AtLeast,
    CollectionSpec,
    Condition,
    Hit,
    IsNull,
    Match,
    VectorBackend,
    VectorPoint,
    Where,
    where,
)

KNOWLEDGE = CollectionSpec(
    "knowledge",
    tenant_key="org_id",
    keyword_keys=("org_id", "room_id", "document_id", "owner_id"),
    integer_keys=("chunk",),
)
MEMORIES = CollectionSpec(
    "memories", tenant_key="org_id", keyword_keys=("user_id", "org_id", "memory_id")
)
COLLECTIONS = {spec.name: spec for spec in (KNOWLEDGE, MEMORIES)}
# Points of one document are derived from its id, so re-ingesting overwrites, never duplicates.
_CHUNK_NAMESPACE = uuid.UUID("6f1c3f0e-3a8e-4a51-9a55-2a7d0c1b9e11")

Mode = Literal["hybrid", "dense", "sparse"]

__all__ = ["COLLECTIONS", "KNOWLEDGE", "MEMORIES", "Hit", "Mode", "SearchQuery", "VectorStore"]


@dataclass(frozen=True)
class SearchQuery:
    text: str
    vector: list[float]
    mode: Mode = "hybrid"
    # How many of each side's best points RRF fuses (at least the search's limit).
    candidates: int = 20


@dataclass(frozen=True)
class Indexed:
    """One point to write: its text only feeds the sparse vector, it is not stored."""

    point_id: str
    vector: list[float]
    text: str
    payload: dict[str, Any]


def chunk_point_id(document_id: uuid.UUID | str, chunk: int) -> str:
    return str(uuid.uuid5(_CHUNK_NAMESPACE, f"{document_id}:{chunk}"))


def knowledge_filter(org_id: str, room_id: str | None, include_org: bool) -> Where:
    """org_id AND (org-wide document OR this room's document)."""
    scopes: list[Condition] = []
    if include_org:
        scopes.append(IsNull("room_id"))
    if room_id is not None:
        scopes.append(Match("room_id", room_id))
    if not scopes:
        scopes.append(Match("document_id", "-"))  # nothing may match
    return Where(must=(Match("org_id", org_id), Where(should=tuple(scopes))))


class VectorStore:
    def __init__(self, backend: VectorBackend, sparse: SparseEncoder | None = None) -> None:
        self.backend = backend
        self.sparse = sparse or SparseEncoder()
        self._known: set[str] = set()

    async def ensure(self, spec: CollectionSpec, size: int) -> None:
        """Create the collection if it does not exist yet; refuse one of another shape."""
        if spec.name not in self._known:
            await self.backend.ensure(spec, size)
            self._known.add(spec.name)

    async def upsert(self, spec: CollectionSpec, items: Sequence[Indexed]) -> None:
        points = [
            VectorPoint(i.point_id, i.vector, self.sparse.document(i.text), i.payload)
            for i in items
        ]
        await self.backend.upsert(spec.name, points)

    async def delete_where(
        self, spec: CollectionSpec, key: str, value: str, *, min_chunk: int | None = None
    ) -> None:
        """Delete the points whose payload `key` equals `value` (and chunk >= min_chunk)."""
        must: tuple[Condition, ...] = (Match(key, value),)
        if min_chunk is not None:
            must += (AtLeast("chunk", min_chunk),)
        await self.backend.delete(spec.name, Where(must=must))

    async def count_where(self, spec: CollectionSpec, key: str, value: str) -> int:
        return await self.backend.count(spec.name, where(**{key: value}))

    async def search(
        self, spec: CollectionSpec, query: SearchQuery, selector: Where, limit: int
    ) -> list[Hit]:
        dense = query.vector if query.mode != "sparse" else None
        sparse = self.sparse.query(query.text) if query.mode != "dense" else None
        if sparse is not None and not sparse.indices:
            if dense is None:
                return []
            sparse = None  # nothing but stop words: the dense side alone
        return await self.backend.query(
            spec.name, selector, limit, dense=dense, sparse=sparse, candidates=query.candidates
        )

    async def search_knowledge(
        self,
        query: SearchQuery,
        org_id: str,
        room_id: str | None,
        include_org: bool,
        limit: int,
    ) -> list[Hit]:
        return await self.search(
            KNOWLEDGE, query, knowledge_filter(org_id, room_id, include_org), limit
        )

    async def search_memories(
        self, query: SearchQuery, user_id: str, org_id: str, limit: int
    ) -> list[Hit]:
        return await self.search(MEMORIES, query, where(user_id=user_id, org_id=org_id), limit)
