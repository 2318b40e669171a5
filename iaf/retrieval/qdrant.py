"""The vector store's back ends, and the one a setting picks.

`QDRANT_URL` set: a Qdrant server through qdrant-client (`ClientBackend`). Unset: Qdrant Edge
in the data dir (`iaf.retrieval.edge`), opened by the process that serves the retrieval task
queue. qdrant-client's local mode also runs behind `ClientBackend`: tests use it as the
stand-in for a server, and the benchmark uses it as the baseline Edge replaced. Local mode
works synchronously, even through AsyncQdrantClient, so it runs on one thread of its own.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

from qdrant_client import AsyncQdrantClient, QdrantClient, models

from iaf.retrieval.vectors import (
    RRF_K,
    SPARSE,
    AtLeast,
    CollectionMismatch,
    CollectionSpec,
    Hit,
    IsNull,
    Match,
    Sparse,
    VectorBackend,
    VectorPoint,
    Where,
    cosine_of,
)
from iaf.settings import Settings


class ThreadedLocalQdrant:
    """AsyncQdrantClient's methods, run by a synchronous local-mode client on one thread
    (local mode admits one opener per path, and its SQLite connection one thread)."""

    def __init__(self, path: str | None = None) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qdrant-local")
        opener = (
            functools.partial(QdrantClient, path=path)
            if path
            else functools.partial(QdrantClient, location=":memory:")
        )
        self._client: QdrantClient = self._executor.submit(opener).result()

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        method = getattr(self._client, name)
        if not callable(method):
            raise AttributeError(name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(
                self._executor, functools.partial(method, *args, **kwargs)
            )

        return call

    async def close(self, **kwargs: Any) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, functools.partial(self._client.close, **kwargs))
        self._executor.shutdown(wait=False)


class ClientBackend:
    """A Qdrant server (or local mode standing in for one) through qdrant-client."""

    def __init__(self, client: AsyncQdrantClient, kind: str = "server") -> None:
        self.client = client
        self.kind = kind

    @classmethod
    def local(cls, path: Path | None = None) -> ClientBackend:
        threaded = ThreadedLocalQdrant(str(path) if path else None)
        # Same method names and arguments as AsyncQdrantClient (its async API mirrors the sync).
        return cls(cast(AsyncQdrantClient, threaded), kind="local")

    async def ensure(self, spec: CollectionSpec, dense_size: int) -> None:
        if not await self.client.collection_exists(spec.name):
            try:
                await self.client.create_collection(
                    spec.name,
                    vectors_config=models.VectorParams(
                        size=dense_size, distance=models.Distance.COSINE
                    ),
                    sparse_vectors_config={
                        SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)
                    },
                )
            except Exception:
                # Another worker created it meanwhile (a conflict); anything else is real.
                if not await self.client.collection_exists(spec.name):
                    raise
            await self._index_payload(spec)
        params = (await self.client.get_collection(spec.name)).config.params
        size = params.vectors.size if isinstance(params.vectors, models.VectorParams) else None
        if size != dense_size:
            raise CollectionMismatch(
                f"collection {spec.name!r} holds {size}-dimension vectors, the embedder makes"
                f" {dense_size}: run `iaf reindex` after changing embedding_model"
            )
        if SPARSE not in (params.sparse_vectors or {}):
            raise CollectionMismatch(
                f"collection {spec.name!r} has no {SPARSE} vectors: run `iaf reindex`"
            )

    async def _index_payload(self, spec: CollectionSpec) -> None:
        if self.kind == "local":
            return  # local mode scans every point; it has no payload indexes
        for key in spec.keyword_keys:
            schema = models.KeywordIndexParams(
                type=models.KeywordIndexType.KEYWORD, is_tenant=key == spec.tenant_key
            )
            await self.client.create_payload_index(spec.name, key, field_schema=schema)
        for key in spec.integer_keys:
            await self.client.create_payload_index(
                spec.name, key, field_schema=models.PayloadSchemaType.INTEGER
            )

    async def drop(self, name: str) -> None:
        if await self.client.collection_exists(name):
            await self.client.delete_collection(name)

    async def upsert(self, name: str, points: Sequence[VectorPoint]) -> None:
        if not points:
            return
        structs = [
            models.PointStruct(
                id=p.id,
                vector={
                    "": p.dense,
                    SPARSE: models.SparseVector(indices=p.sparse.indices, values=p.sparse.values),
                },
                payload=p.payload,
            )
            for p in points
        ]
        await self.client.upsert(name, points=structs, wait=True)

    async def delete(self, name: str, selector: Where) -> None:
        if await self.client.collection_exists(name):
            await self.client.delete(
                name, points_selector=models.FilterSelector(filter=_filter(selector)), wait=True
            )

    async def count(self, name: str, selector: Where | None = None) -> int:
        if not await self.client.collection_exists(name):
            return 0
        found = _filter(selector) if selector else None
        return (await self.client.count(name, count_filter=found, exact=True)).count

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
        if limit <= 0 or (dense is None and sparse is None):
            return []
        if not await self.client.collection_exists(name):
            return []
        found = _filter(selector)
        sides: list[tuple[Any, str | None]] = []
        if dense is not None:
            sides.append((dense, None))
        if sparse is not None:
            terms = models.SparseVector(indices=sparse.indices, values=sparse.values)
            sides.append((terms, SPARSE))
        if len(sides) == 1:
            query, using = sides[0]
            response = await self.client.query_points(
                name, query=query, using=using, query_filter=found, limit=limit, with_payload=True
            )
            return [
                Hit(str(p.id), float(p.score), dict(p.payload or {}), _plain(p.score, dense))
                for p in response.points
            ]
        depth = max(limit, candidates)
        response = await self.client.query_points(
            name,
            prefetch=[
                models.Prefetch(query=q, using=u, filter=found, limit=depth) for q, u in sides
            ],
            query=models.RrfQuery(rrf=models.Rrf(k=RRF_K)),
            query_filter=found,
            limit=limit,
            with_payload=True,
            # Every vector: asking a server for the unnamed one by name ("") is not portable.
            with_vectors=True,
        )
        return [
            Hit(str(p.id), float(p.score), dict(p.payload or {}), cosine_of(dense or [], p.vector))
            for p in response.points
        ]

    async def scroll(
        self, name: str, limit: int, offset: str | None = None
    ) -> tuple[list[Hit], str | None]:
        if not await self.client.collection_exists(name):
            return [], None
        records, following = await self.client.scroll(
            name, limit=limit, offset=offset, with_payload=True, with_vectors=False
        )
        page = [Hit(str(r.id), 0.0, dict(r.payload or {})) for r in records]
        return page, (str(following) if following is not None else None)

    async def collections(self) -> list[str]:
        return sorted(c.name for c in (await self.client.get_collections()).collections)

    async def compact(self) -> None:
        return None  # a server optimizes in the background

    async def close(self) -> None:
        await self.client.close()


def make_vector_backend(settings: Settings) -> VectorBackend:
    """The server when qdrant_url is set, else Qdrant Edge under the data dir."""
    if settings.qdrant_url:
        key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        return ClientBackend(AsyncQdrantClient(url=settings.qdrant_url, api_key=key))
    from iaf.retrieval.edge import EdgeBackend

    return EdgeBackend(settings.resolved_qdrant_path)


def _plain(score: float, dense: list[float] | None) -> float | None:
    return float(score) if dense is not None else None


def _filter(selector: Where) -> models.Filter:
    return models.Filter(
        must=[_condition(c) for c in selector.must] or None,
        should=[_condition(c) for c in selector.should] or None,
    )


def _condition(condition: Match | IsNull | AtLeast | Where) -> models.Condition:
    if isinstance(condition, Match):
        return models.FieldCondition(
            key=condition.key, match=models.MatchValue(value=condition.value)
        )
    if isinstance(condition, IsNull):
        return models.IsNullCondition(is_null=models.PayloadField(key=condition.key))
    if isinstance(condition, AtLeast):
        return models.FieldCondition(key=condition.key, range=models.Range(gte=condition.value))
    return _filter(condition)
