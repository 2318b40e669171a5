"""`iaf reindex` rebuilds the vectors from PostgreSQL and retires old local-mode data."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from qdrant_client import QdrantClient, models

from iaf.db.migrate import upgrade
from iaf.retrieval.edge import EdgeBackend
from iaf.retrieval.embedder import make_embedder
from iaf.retrieval.rebuild import local_mode_data, rebuild_vectors
from iaf.retrieval.store import KNOWLEDGE, MEMORIES, SearchQuery, VectorStore
from iaf.retrieval.vectors import VectorStoreBusy, where
from tests.agent_helpers import rows
from tests.conftest import make_settings

POLICY = (
    "Travel policy. Train tickets are booked through the travel desk.\n\n"
    "Expense code TRV-5521 covers hotel nights for client visits."
)


@pytest.fixture
def reindex_database(postgres) -> str:
    name = f"iaf_reindex_{uuid.uuid4().hex[:8]}"
    postgres.ensure_database(name)
    url = postgres.url(name)
    upgrade(url)
    return str(url)


def seed(database_url: str) -> tuple[str, str, str]:
    org, user, document, memory = (str(uuid.uuid4()) for _ in range(4))
    rows(database_url, "INSERT INTO orgs (id, name) VALUES (%s, 'Org') RETURNING id", org)
    rows(
        database_url,
        "INSERT INTO users (id, org_id, email, name, handle, password_hash, role, status,"
        " token_version) VALUES (%s, %s, 'r@example.com', 'R', 'r', 'x', 'admin', 'active', 0)"
        " RETURNING id",
        user,
        org,
    )
    rows(
        database_url,
        "INSERT INTO knowledge_documents (id, org_id, owner_id, scope, title, content, status,"
        " chunk_count) VALUES (%s, %s, %s, 'org', 'Travel', %s, 'ready', 1) RETURNING id",
        document,
        org,
        user,
        POLICY,
    )
    rows(
        database_url,
        "INSERT INTO memories (id, user_id, org_id, content, status) VALUES"
        " (%s, %s, %s, 'Prefers the 7am train.', 'ready') RETURNING id",
        memory,
        user,
        org,
    )
    return org, document, memory


def old_local_mode_store(path: Path) -> None:
    client = QdrantClient(path=str(path))
    client.create_collection(
        "knowledge", vectors_config=models.VectorParams(size=4, distance=models.Distance.COSINE)
    )
    client.upsert(
        "knowledge",
        [models.PointStruct(id=1, vector=[1.0, 0, 0, 0], payload={"text": "an old copy"})],
    )
    client.close()


async def test_reindex_rebuilds_from_postgres_and_removes_local_mode_data(
    tmp_path: Path, reindex_database: str, temporal_server
) -> None:
    settings = make_settings(
        tmp_path, reindex_database, temporal_server.address, qdrant_path=tmp_path / "qdrant"
    )
    org, document, memory = seed(reindex_database)
    old_local_mode_store(settings.resolved_qdrant_path)
    assert local_mode_data(settings.resolved_qdrant_path)

    report = await rebuild_vectors(settings)

    assert (report.documents, report.memories, report.removed_local_mode_data) == (1, 1, True)
    assert not local_mode_data(settings.resolved_qdrant_path)
    assert not list(settings.resolved_qdrant_path.rglob("*.sqlite")), "no old text copies left"
    chunks = rows(
        reindex_database,
        "SELECT count(*) FROM knowledge_chunks WHERE document_id = %s",
        document,
    )
    assert chunks == [(report.chunks,)] and report.chunks >= 1
    states = rows(
        reindex_database,
        "SELECT status, chunks_done, chunks_total FROM knowledge_documents WHERE id = %s",
        document,
    )
    assert states == [("ready", report.chunks, report.chunks)]

    backend = EdgeBackend(settings.resolved_qdrant_path)
    embedder = make_embedder(settings.embedding_model)
    try:
        store = VectorStore(backend)
        assert await backend.count(KNOWLEDGE.name, where(document_id=document)) == report.chunks
        assert await backend.count(MEMORIES.name, where(memory_id=memory)) == 1
        question = "which expense code for hotel nights? TRV-5521"
        [vector] = await embedder.embed([question])
        hits = await store.search_knowledge(SearchQuery(question, vector), org, None, True, 3)
        assert hits and hits[0].payload["document_id"] == document
    finally:
        embedder.close()
        await backend.close()


async def test_reindex_refuses_while_a_worker_holds_the_store(
    tmp_path: Path, reindex_database: str, temporal_server
) -> None:
    settings = make_settings(
        tmp_path, reindex_database, temporal_server.address, qdrant_path=tmp_path / "qdrant"
    )
    held = EdgeBackend(settings.resolved_qdrant_path)
    try:
        with pytest.raises(VectorStoreBusy):
            await rebuild_vectors(settings)
    finally:
        await held.close()
