"""`iaf reindex`: rebuild every vector from PostgreSQL, where documents and memories live.

Needed when the vector store changes shape: after moving from qdrant-client's local mode
(data dirs made before Qdrant Edge), after changing `embedding_model`, or to compact the
embedded store. The collections are dropped and refilled from the ready documents and
memories. On the embedded stack it needs the store to itself (the retrieval worker stopped);
`make run` runs it once by itself when it finds local-mode data. Against a Qdrant server,
agents find no knowledge until a document's turn comes.

Old local-mode files are deleted once the rebuild has succeeded: they hold copies of chunk
texts, which must not outlive an erasure.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from iaf.settings import Settings

# What qdrant-client's local mode leaves in its path (beside its .lock).
_LOCAL_MODE_FILES = ("meta.json", "collection")


def local_mode_data(root: Path) -> bool:
    """Whether `root` still holds a qdrant-client local-mode store."""
    return any((root / name).exists() for name in _LOCAL_MODE_FILES)


@dataclass(frozen=True)
class RebuildReport:
    documents: int
    chunks: int
    memories: int
    seconds: float
    removed_local_mode_data: bool


async def rebuild_vectors(
    settings: Settings, echo: Callable[[str], None] = lambda line: None
) -> RebuildReport:
    from iaf.db.engine import make_engine, make_sessionmaker
    from iaf.db.repositories.vector_rebuild import VectorRebuildRepository
    from iaf.retrieval.embedder import make_embedder
    from iaf.retrieval.indexing import KnowledgeIndexer
    from iaf.retrieval.qdrant import make_vector_backend
    from iaf.retrieval.store import COLLECTIONS, VectorStore

    started = time.perf_counter()
    backend = make_vector_backend(settings)  # the embedded store's lock: fails if it is busy
    embedder = make_embedder(settings.embedding_model)
    engine = make_engine(settings.database_url, 2)
    try:
        sessionmaker = make_sessionmaker(engine)
        async with sessionmaker() as session:
            documents = await VectorRebuildRepository(session).ready_documents()
            memories = await VectorRebuildRepository(session).ready_memories()
        echo(f"rebuilding vectors of {len(documents)} documents and {len(memories)} memories")
        for name in COLLECTIONS:
            await backend.drop(name)
        indexer = KnowledgeIndexer(sessionmaker, VectorStore(backend), embedder, settings)
        chunks = 0
        for number, document_id in enumerate(documents, 1):
            chunks += (await indexer.document(document_id, rebuild=True)).chunks
            echo(f"  document {number}/{len(documents)}: {chunks} chunks so far")
        for memory_id in memories:
            await indexer.memory(memory_id, rebuild=True)
        await backend.compact()
        removed = False
        if not settings.qdrant_url and local_mode_data(settings.resolved_qdrant_path):
            _remove_local_mode_data(settings.resolved_qdrant_path)
            removed = True
    finally:
        await backend.close()
        embedder.close()
        await engine.dispose()
    return RebuildReport(
        len(documents), chunks, len(memories), time.perf_counter() - started, removed
    )


def _remove_local_mode_data(root: Path) -> None:
    for name in _LOCAL_MODE_FILES:
        path = root / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
