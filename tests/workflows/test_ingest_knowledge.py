"""IngestKnowledge, IndexMemory and RemoveVectors against the embedded Qdrant and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio import activity
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker

from activities.agents_db import KnowledgeDbActivities
from iaf.db.engine import make_engine, make_sessionmaker
from iaf.retrieval import indexing
from iaf.retrieval.indexing import KnowledgeIndexer
from iaf.retrieval.store import KNOWLEDGE, MEMORIES, Indexed, VectorStore, chunk_point_id
from iaf.retrieval.vectors import Hit
from iaf.workflow_calls import start_vector_job
from schemas.knowledge import DocumentRef, IngestResult
from tests.agent_helpers import ingest, rows, temporal
from tests.gdpr_helpers import execute
from tests.helpers import signup
from workflows.ingest_knowledge import IngestKnowledge

LONG_DOC = "\n\n".join(
    f"Section {i}. The orders service stores state {i} in PostgreSQL and publishes event {i}."
    " Consumers read the outbox table and retry with backoff." * 3
    for i in range(12)
)


async def points(worker, collection: str, key: str, value: str) -> list[Hit]:
    found: list[Hit] = []
    offset = None
    while True:
        page, offset = await worker.vectors.scroll(collection, 1000, offset)
        found += [p for p in page if p.payload.get(key) == value]
        if offset is None:
            break
    return sorted(found, key=lambda p: p.payload.get("chunk", 0))


async def wait_gone(database_url: str, table: str, item_id: str) -> None:
    for _ in range(300):
        if not rows(database_url, f"SELECT 1 FROM {table} WHERE id = %s", item_id):
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{table} {item_id} was not removed")


def chunk_texts(database_url: str, document_id: str) -> list[str]:
    found = rows(
        database_url,
        "SELECT content FROM knowledge_chunks WHERE document_id = %s ORDER BY chunk",
        document_id,
    )
    return [r[0] for r in found]


def insert_document(database_url: str, person, content: str, status: str) -> str:
    document_id = str(uuid.uuid4())
    rows(
        database_url,
        "INSERT INTO knowledge_documents (id, org_id, owner_id, scope, title, content, status,"
        " created_at, updated_at) VALUES (%s, %s, %s, 'org', 'Inserted', %s, %s,"
        " now() - interval '1 hour', now() - interval '1 hour') RETURNING id",
        document_id,
        person.user["org_id"],
        person.id,
        content,
        status,
    )
    return document_id


async def test_a_document_is_chunked_embedded_and_removed(client, settings, worker, database_url):
    alice = await signup(client)
    document = await ingest(alice, "Orders service", LONG_DOC, "org")
    assert document["status"] == "ready" and document["chunk_count"] > 3
    assert document["chunks_done"] == document["chunks_total"] == document["chunk_count"]
    assert document["indexed_at"] is not None
    stored = await points(worker, KNOWLEDGE.name, "document_id", document["id"])
    assert len(stored) == document["chunk_count"]
    assert [p.payload["chunk"] for p in stored] == list(range(len(stored)))
    assert {p.point_id for p in stored} == {
        chunk_point_id(document["id"], i) for i in range(len(stored))
    }
    assert stored[0].payload == {
        "org_id": alice.user["org_id"],
        "room_id": None,
        "document_id": document["id"],
        "owner_id": alice.id,
        "chunk": 0,
    }, "identifiers only: the text stays in PostgreSQL"
    texts = chunk_texts(database_url, document["id"])
    assert len(texts) == len(stored) and texts[0].startswith("Section 0.")
    assert all(len(text) <= settings.knowledge_chunk_chars for text in texts)
    embedding_model = rows(
        database_url,
        "SELECT embedding_model FROM knowledge_documents WHERE id = %s",
        document["id"],
    )
    assert embedding_model == [(settings.embedding_model,)]

    tc = await temporal(settings)
    result = await tc.get_workflow_handle(
        f"ingest-{document['id']}", result_type=IngestResult
    ).result()
    assert result == IngestResult(status="ready", chunks=document["chunk_count"])

    response = await alice.delete(f"/api/knowledge/documents/{document['id']}")
    assert response.status_code == 202 and response.json()["status"] == "deleting"
    await wait_gone(database_url, "knowledge_documents", document["id"])
    assert await points(worker, KNOWLEDGE.name, "document_id", document["id"]) == []
    assert chunk_texts(database_url, document["id"]) == []
    assert (await alice.get(f"/api/knowledge/documents/{document['id']}")).status_code == 404


async def test_progress_moves_batch_by_batch_and_a_retry_resumes(
    client, settings, worker, database_url, monkeypatch: pytest.MonkeyPatch
):
    """chunks_done moves after each stored batch; an attempt told (by its heartbeats) that
    the first batches are stored embeds only the rest."""
    monkeypatch.setattr(indexing, "BATCH", 3)
    alice = await signup(client)
    document_id = insert_document(database_url, alice, LONG_DOC, "processing")
    embedded: list[int] = []

    class Counting:
        model_name = worker.embedder.model_name

        async def dimension(self) -> int:
            return int(await worker.embedder.dimension())

        async def embed(self, texts):
            embedded.append(len(texts))
            return await worker.embedder.embed(texts)

    indexer = KnowledgeIndexer(
        worker.sessionmaker, VectorStore(worker.vectors), Counting(), settings
    )
    seen: list[tuple[int, list[tuple[int, int]]]] = []

    def on_batch(done: int) -> None:
        progress = rows(
            database_url,
            "SELECT chunks_done, chunks_total FROM knowledge_documents WHERE id = %s",
            document_id,
        )
        seen.append((done, progress))

    outcome = await indexer.document(uuid.UUID(document_id), resume_at=8, on_batch=on_batch)
    total = outcome.chunks
    assert outcome.status == "ready" and total > 11
    assert [done for done, _ in seen] == [*range(11, total, 3), total]
    assert all(progress == [(done, total)] for done, progress in seen), seen
    assert sum(embedded) == total - 8, "the 8 chunks stored before were not embedded again"
    assert len(await points(worker, KNOWLEDGE.name, "document_id", document_id)) == total - 8


async def test_a_removal_during_ingestion_takes_the_points_back(
    client, settings, worker, database_url, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(indexing, "BATCH", 4)
    alice = await signup(client)
    document_id = insert_document(database_url, alice, LONG_DOC, "pending")
    indexer = KnowledgeIndexer(
        worker.sessionmaker, VectorStore(worker.vectors), worker.embedder, settings
    )

    def remove_after_first_batch(done: int) -> None:
        rows(
            database_url,
            "UPDATE knowledge_documents SET status = 'deleting' WHERE id = %s RETURNING id",
            document_id,
        )

    outcome = await indexer.document(uuid.UUID(document_id), on_batch=remove_after_first_batch)
    assert outcome.status == "deleting"
    assert await points(worker, KNOWLEDGE.name, "document_id", document_id) == []


async def test_a_memory_is_indexed_for_its_owner_and_removed(client, worker, database_url):
    alice = await signup(client)
    created = await alice.post("/api/memories", json={"content": "Prefers short answers."})
    memory = created.json()
    assert created.status_code == 201 and memory["status"] == "pending"
    for _ in range(300):
        if rows(database_url, "SELECT status FROM memories WHERE id = %s", memory["id"]) == [
            ("ready",)
        ]:
            break
        await asyncio.sleep(0.1)
    stored = await points(worker, MEMORIES.name, "memory_id", memory["id"])
    assert len(stored) == 1 and stored[0].point_id == memory["id"]
    assert stored[0].payload == {
        "user_id": alice.id,
        "org_id": alice.user["org_id"],
        "memory_id": memory["id"],
    }
    assert (await alice.delete(f"/api/memories/{memory['id']}")).status_code == 204
    await wait_gone(database_url, "memories", memory["id"])
    assert await points(worker, MEMORIES.name, "memory_id", memory["id"]) == []


async def test_jobs_left_behind_while_temporal_was_away_are_resumed(
    client, settings, worker, database_url
):
    """Rows stored but never handed to Temporal (rule 5) are picked up by the worker."""
    alice = await signup(client)
    deleting = str(uuid.uuid4())
    store = VectorStore(worker.vectors)
    await store.ensure(KNOWLEDGE, 384)
    payload = {
        "org_id": alice.user["org_id"],
        "room_id": None,
        "document_id": deleting,
        "owner_id": alice.id,
        "chunk": 0,
    }
    await store.upsert(
        KNOWLEDGE, [Indexed(chunk_point_id(deleting, 0), [0.1] * 384, "old", payload)]
    )
    pending = insert_document(database_url, alice, "Resume me please.", "pending")
    rows(
        database_url,
        "INSERT INTO knowledge_documents (id, org_id, owner_id, scope, title, content, status,"
        " created_at, updated_at) VALUES (%s, %s, %s, 'org', 'Left behind', 'old', 'deleting',"
        " now() - interval '1 hour', now() - interval '1 hour') RETURNING id",
        deleting,
        alice.user["org_id"],
        alice.id,
    )
    for _ in range(300):
        states = rows(
            database_url,
            "SELECT id::text, status FROM knowledge_documents WHERE id IN (%s, %s)",
            pending,
            deleting,
        )
        if states == [(pending, "ready")]:
            break
        await asyncio.sleep(0.1)
    assert states == [(pending, "ready")]
    assert len(await points(worker, KNOWLEDGE.name, "document_id", pending)) == 1
    assert await points(worker, KNOWLEDGE.name, "document_id", deleting) == []


async def test_a_deleted_document_is_never_indexed(client, settings, worker, database_url):
    """Ingestion checks the row under lock: a document being deleted gets no points."""
    alice = await signup(client)
    from activities.retrieval import RetrievalActivities

    document_id = str(uuid.uuid4())
    rows(
        database_url,
        "INSERT INTO knowledge_documents (id, org_id, owner_id, scope, title, content, status)"
        " VALUES (%s, %s, %s, 'org', 'Going away', 'Delete me.', 'deleting') RETURNING id",
        document_id,
        alice.user["org_id"],
        alice.id,
    )
    activities = RetrievalActivities(
        worker.sessionmaker, VectorStore(worker.vectors), worker.embedder, settings
    )
    result = await ActivityEnvironment().run(
        activities.ingest_document, DocumentRef(document_id=uuid.UUID(document_id))
    )
    assert result.status == "deleting"
    assert await points(worker, KNOWLEDGE.name, "document_id", document_id) == []


class _EmbeddingDown:
    """Stands in for the retrieval activity: the embedding service refuses, for good."""

    @activity.defn(name="ingest_knowledge_document")
    async def ingest_document(self, ref: DocumentRef) -> IngestResult:
        raise ApplicationError(
            "embedding service refused", type="EmbeddingDown", non_retryable=True
        )


async def test_a_failed_ingestion_is_a_failed_run_operators_can_query(
    client, settings, worker, database_url
):
    """The README's query for failed ingestions: Kind = "ingest" AND ExecutionStatus = "Failed"."""
    alice = await signup(client)
    document = await ingest(alice, "Doomed", "Text to embed. " * 50, "org")
    queue = f"ingest-fails-{uuid.uuid4().hex[:8]}"
    failing = settings.model_copy(
        update={"temporal_task_queue": queue, "temporal_retrieval_task_queue": queue}
    )
    # As if its owner had asked for it again (POST .../retry): it waits for the workflow.
    await execute(
        settings,
        "UPDATE knowledge_documents SET status = 'pending' WHERE id = :id",
        id=document["id"],
    )
    tc = await temporal(settings)
    knowledge_db = KnowledgeDbActivities(make_sessionmaker(make_engine(database_url)))
    async with Worker(
        tc,
        task_queue=queue,
        workflows=[IngestKnowledge],
        activities=[_EmbeddingDown().ingest_document, knowledge_db.mark_document_failed],
    ):
        started = await start_vector_job(
            tc, failing, "document", uuid.UUID(document["id"]), uuid.UUID(alice.id)
        )
        assert started
        handle = tc.get_workflow_handle(f"ingest-{document['id']}")
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
    assert isinstance(failure.value.cause, ApplicationError)
    assert failure.value.cause.type == "IngestionFailed"
    assert (await handle.describe()).status == WorkflowExecutionStatus.FAILED
    status = rows(
        database_url, "SELECT status FROM knowledge_documents WHERE id = %s", document["id"]
    )
    assert status == [("failed",)]
    query = f'Kind = "ingest" AND ExecutionStatus = "Failed" AND WorkflowId = "{handle.id}"'
    for _ in range(50):  # visibility is eventually consistent
        if [w.id async for w in tc.list_workflows(query)] == [handle.id]:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"not found by {query}")
