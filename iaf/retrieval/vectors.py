"""What the application asks of a vector store, whichever Qdrant engine answers.

Two back ends implement `VectorBackend`: Qdrant Edge in the embedded stack (the Qdrant engine
inside the retrieval worker, `iaf.retrieval.edge`) and qdrant-client for a Qdrant server
(`iaf.retrieval.qdrant`). Filters, points and hits are the small neutral types below, so the
store, the activities and the GDPR steps never build an engine's own models.

Every collection holds one unnamed dense vector (cosine) and one BM25 sparse vector
(`SPARSE`, IDF applied by the engine); payloads carry identifiers only. The text lives in
PostgreSQL, where deleting a row deletes it, while a deleted point's bytes stay in an engine's
segment files until they are compacted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

SPARSE = "bm25"
# Reciprocal rank fusion: score = sum over lists of 1 / (k + rank).
RRF_K = 60


@dataclass(frozen=True)
class Match:
    key: str
    value: str


@dataclass(frozen=True)
class IsNull:
    key: str


@dataclass(frozen=True)
class AtLeast:
    key: str
    value: int


@dataclass(frozen=True)
class Where:
    """All of `must` and, when `should` is not empty, at least one of `should`."""

    must: tuple[Condition, ...] = ()
    should: tuple[Condition, ...] = ()


Condition = Match | IsNull | AtLeast | Where


def where(**equals: str) -> Where:
    return Where(must=tuple(Match(key, value) for key, value in equals.items()))


@dataclass(frozen=True)
class Sparse:
    indices: list[int]
    values: list[float]


@dataclass(frozen=True)
class VectorPoint:
    id: str
    dense: list[float]
    sparse: Sparse
    payload: dict[str, Any]


@dataclass(frozen=True)
class Hit:
    """`score` ranks (a cosine, a BM25 sum or a fused rank score); `similarity` is the dense
    cosine whenever the query had a dense vector, the one figure thresholds compare to."""

    point_id: str
    score: float
    payload: dict[str, Any]
    similarity: float | None = None


def cosine_of(query: list[float], stored: Any) -> float | None:
    """Cosine of a query and a stored vector (Qdrant keeps cosine vectors normalised)."""
    vector = stored.get("") if isinstance(stored, dict) else stored
    if not vector:
        return None
    norm = sum(x * x for x in query) ** 0.5 or 1.0
    return float(sum(a * b for a, b in zip(query, vector, strict=False)) / norm)


@dataclass(frozen=True)
class CollectionSpec:
    """A collection and the payload fields its queries filter by (each gets an index)."""

    name: str
    tenant_key: str
    keyword_keys: tuple[str, ...]
    integer_keys: tuple[str, ...] = ()
    indexed: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "indexed", (*self.keyword_keys, *self.integer_keys))


class CollectionMismatch(RuntimeError):
    """A stored collection was made for another embedding model or an older layout."""


class VectorStoreBusy(RuntimeError):
    """The embedded store is open in another process (it admits one)."""


class VectorBackend(Protocol):
    """A Qdrant engine. Reads of a collection that does not exist yet are empty."""

    kind: str

    async def ensure(self, spec: CollectionSpec, dense_size: int) -> None:
        """Create the collection and its payload indexes, or check the stored one fits."""
        ...

    async def drop(self, name: str) -> None: ...

    async def upsert(self, name: str, points: Sequence[VectorPoint]) -> None: ...

    async def delete(self, name: str, selector: Where) -> None: ...

    async def count(self, name: str, selector: Where | None = None) -> int: ...

    async def query(
        self,
        name: str,
        selector: Where,
        limit: int,
        *,
        dense: list[float] | None = None,
        sparse: Sparse | None = None,
        candidates: int = 0,
    ) -> list[Hit]:
        """Nearest points by the dense vector, the sparse one, or both fused by RRF (each
        side contributes its best `candidates`, at least `limit`)."""
        ...

    async def scroll(
        self, name: str, limit: int, offset: str | None = None
    ) -> tuple[list[Hit], str | None]:
        """A page of points (score 0) and the offset of the next page, None after the last."""
        ...

    async def collections(self) -> list[str]: ...

    async def compact(self) -> None:
        """Reclaim deleted points and build indexes, where the engine does not by itself."""
        ...

    async def close(self) -> None: ...
