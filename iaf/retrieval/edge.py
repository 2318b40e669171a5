"""Qdrant Edge: the Qdrant engine inside the process that serves the retrieval task queue.

One shard per collection under `<qdrant_path>/edge/<collection>`. An exclusive flock on
`<qdrant_path>/.lock` makes a second opener fail at once (a shard admits one process), and
lets the API's health check see that the worker holds the store.

qdrant-edge-py keeps the GIL for the whole of each call, so every call runs on one thread of
its own (ordering them too) and calls stay short: a filtered search of 100,000 points takes
~18 ms, a 256-point upsert a few ms. `optimize()` (HNSW build, vacuum) is not short: it holds
the GIL for seconds per 10,000 points, which would stall the worker's event loop, its
heartbeats and every reply. So the serving process never runs it; search stays exact over the
points the payload index selects, and `iaf reindex` (the process owns the store alone) runs
`compact()` after rebuilding.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import json
import os
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import qdrant_edge as edge

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
    VectorPoint,
    VectorStoreBusy,
    Where,
    cosine_of,
)

T = TypeVar("T")
_CONFIG_FILE = "edge_config.json"


class EdgeBackend:
    kind = "edge"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.shards_dir = root / "edge"
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qdrant-edge")
        self._shards: dict[str, edge.EdgeShard] = {}
        self._lock_fd = self._lock(root)

    @staticmethod
    def _lock(root: Path) -> int:
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(root / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise VectorStoreBusy(
                f"the vector store in {root} is open in another process (a worker serving"
                " retrieval, or `iaf reindex`); stop it first"
            ) from None
        return fd

    async def _run(self, call: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(call, *args))

    # --- shards (on the store's thread) ------------------------------------------------------

    def _path(self, name: str) -> Path:
        return self.shards_dir / name

    def _shard(self, name: str) -> edge.EdgeShard | None:
        shard = self._shards.get(name)
        if shard is None and (self._path(name) / _CONFIG_FILE).exists():
            shard = self._shards[name] = edge.EdgeShard.load(str(self._path(name)))
        return shard

    def _ensure(self, spec: CollectionSpec, dense_size: int) -> None:
        path = self._path(spec.name)
        if (path / _CONFIG_FILE).exists():
            _check_config(spec.name, json.loads((path / _CONFIG_FILE).read_text()), dense_size)
            self._shard(spec.name)
            return
        path.mkdir(parents=True, exist_ok=True)
        config = edge.EdgeConfig(
            vectors=edge.EdgeVectorParams(size=dense_size, distance=edge.Distance.Cosine),
            sparse_vectors={SPARSE: edge.EdgeSparseVectorParams(modifier=edge.Modifier.Idf)},
        )
        shard = edge.EdgeShard.create(str(path), config)
        for key in spec.keyword_keys:
            params = edge.KeywordIndexParams(is_tenant=key == spec.tenant_key)
            shard.update(edge.UpdateOperation.create_field_index(key, params))
        for key in spec.integer_keys:
            schema = edge.PayloadSchemaType.Integer
            shard.update(edge.UpdateOperation.create_field_index(key, schema))
        shard.flush()
        self._shards[spec.name] = shard

    def _drop(self, name: str) -> None:
        shard = self._shards.pop(name, None)
        if shard is not None:
            shard.close()
        shutil.rmtree(self._path(name), ignore_errors=True)

    def _upsert(self, name: str, points: Sequence[VectorPoint]) -> None:
        shard = self._shard(name)
        if shard is None:
            raise CollectionMismatch(f"collection {name!r} does not exist")
        shard.update(edge.UpdateOperation.upsert_points([_point(p) for p in points]))

    def _delete(self, name: str, selector: Where) -> None:
        if (shard := self._shard(name)) is not None:
            shard.update(edge.UpdateOperation.delete_points_by_filter(_filter(selector)))

    def _count(self, name: str, selector: Where | None) -> int:
        shard = self._shard(name)
        if shard is None:
            return 0
        found = _filter(selector) if selector else None
        return int(shard.count(edge.CountRequest(exact=True, filter=found)))

    def _query(
        self, name: str, request: edge.QueryRequest, dense: list[float] | None, fused: bool
    ) -> list[Hit]:
        shard = self._shard(name)
        if shard is None:
            return []
        return [
            Hit(
                str(p.id),
                float(p.score),
                dict(p.payload or {}),
                _similarity(p.score, p.vector, dense, fused),
            )
            for p in shard.query(request)
        ]

    def _scroll(self, name: str, limit: int, offset: str | None) -> tuple[list[Hit], str | None]:
        shard = self._shard(name)
        if shard is None:
            return [], None
        request = edge.ScrollRequest(
            offset=offset, limit=limit, with_payload=True, with_vector=False
        )
        records, following = shard.scroll(request)
        page = [Hit(str(r.id), 0.0, dict(r.payload or {})) for r in records]
        return page, (str(following) if following is not None else None)

    def _collections(self) -> list[str]:
        if not self.shards_dir.is_dir():
            return []
        return sorted(p.name for p in self.shards_dir.iterdir() if (p / _CONFIG_FILE).exists())

    def _compact(self) -> None:
        for name in self._collections():
            if (shard := self._shard(name)) is not None:
                shard.optimize()
                shard.flush()

    def _close(self) -> None:
        for shard in self._shards.values():
            shard.close()  # flushes
        self._shards.clear()

    # --- VectorBackend ---------------------------------------------------------------------

    async def ensure(self, spec: CollectionSpec, dense_size: int) -> None:
        await self._run(self._ensure, spec, dense_size)

    async def drop(self, name: str) -> None:
        await self._run(self._drop, name)

    async def upsert(self, name: str, points: Sequence[VectorPoint]) -> None:
        if points:
            await self._run(self._upsert, name, points)

    async def delete(self, name: str, selector: Where) -> None:
        await self._run(self._delete, name, selector)

    async def count(self, name: str, selector: Where | None = None) -> int:
        return await self._run(self._count, name, selector)

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
        found = _filter(selector)
        queries = [
            q
            for q in (
                edge.Query.Nearest(dense) if dense is not None else None,
                _sparse_query(sparse) if sparse is not None else None,
            )
            if q is not None
        ]
        fused = len(queries) > 1
        if not fused:
            request = edge.QueryRequest(
                query=queries[0], filter=found, limit=limit, with_payload=True
            )
        else:
            depth = max(limit, candidates)
            request = edge.QueryRequest(
                prefetches=[edge.Prefetch(query=q, limit=depth, filter=found) for q in queries],
                query=edge.Fusion.Rrf(k=RRF_K),  # type: ignore[arg-type]  # stub lists Fusion
                filter=found,
                limit=limit,
                with_payload=True,
                with_vector=[""],
            )
        return await self._run(self._query, name, request, dense, fused)

    async def scroll(
        self, name: str, limit: int, offset: str | None = None
    ) -> tuple[list[Hit], str | None]:
        return await self._run(self._scroll, name, limit, offset)

    async def collections(self) -> list[str]:
        return await self._run(self._collections)

    async def compact(self) -> None:
        """Vacuum deleted points and build HNSW indexes: only where nothing else waits on
        this process (see the module docstring)."""
        await self._run(self._compact)

    async def close(self) -> None:
        if self._lock_fd < 0:
            return
        with contextlib.suppress(RuntimeError):  # the executor was already shut down
            await self._run(self._close)
        self._executor.shutdown(wait=True)
        os.close(self._lock_fd)  # releases the flock
        self._lock_fd = -1


def _check_config(name: str, stored: dict[str, Any], dense_size: int) -> None:
    size = stored.get("vectors", {}).get("", {}).get("size")
    if size != dense_size:
        raise CollectionMismatch(
            f"collection {name!r} holds {size}-dimension vectors, the embedder makes"
            f" {dense_size}: run `iaf reindex` after changing embedding_model"
        )
    if SPARSE not in stored.get("sparse_vectors", {}):
        raise CollectionMismatch(f"collection {name!r} has no {SPARSE} vectors: run `iaf reindex`")


def _similarity(score: float, stored: Any, dense: list[float] | None, fused: bool) -> float | None:
    if dense is None:
        return None
    return cosine_of(dense, stored) if fused else float(score)


def _point(point: VectorPoint) -> edge.Point:
    sparse = edge.SparseVector(indices=point.sparse.indices, values=point.sparse.values)
    return edge.Point(point.id, {"": point.dense, SPARSE: sparse}, point.payload)


def _sparse_query(sparse: Sparse) -> edge.Query:
    vector = edge.SparseVector(indices=sparse.indices, values=sparse.values)
    return edge.Query.Nearest(vector, using=SPARSE)


def _filter(selector: Where) -> edge.Filter:
    return edge.Filter(
        must=[_condition(c) for c in selector.must] or None,
        should=[_condition(c) for c in selector.should] or None,
    )


def _condition(condition: Match | IsNull | AtLeast | Where) -> Any:
    if isinstance(condition, Match):
        return edge.FieldCondition(key=condition.key, match=edge.MatchValue(condition.value))
    if isinstance(condition, IsNull):
        return edge.IsNullCondition(condition.key)
    if isinstance(condition, AtLeast):
        return edge.FieldCondition(key=condition.key, range=edge.RangeFloat(gte=condition.value))
    return _filter(condition)
