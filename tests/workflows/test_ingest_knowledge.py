"""IngestKnowledge, IndexMemory and RemoveVectors against Qdrant local mode and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from qdrant_client import models
from temporalio import activity
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from activities.agents_db import KnowledgeDbActivities
from iaf.db.engine import make_engine, make_sessionmaker
from iaf.retrieval.store import KNOWLEDGE, MEMORIES, VectorStore, chunk_point_id
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


async def points(worker, collection: str, key: str, value: str) -> list[models.Record]:
    found, _ = await worker.qdrant.scroll(
        collection,
        scroll_filter=models.Filter(
            must=[models.FieldCondition(key=key, match=models.MatchValue(value=value))]
        ),
        limit=1000,
        with_payload=True,
    )
    return sorted(found, key=lambda p: p.payload.get("chunk", 0))


async def wait_gone(database_url: str, table: str, item_id: str) -> None:
    for _ in range(300):
        if not rows(database_url, f"SELECT 1 FROM {table} WHERE id = %s", item_id):
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{table} {item_id} was not removed")


async def test_a_document_is_chunked_embedded_and_removed(client, settings, worker, database_url):
    alice = await signup(client)
    document = await ingest(alice, "Orders service", LONG_DOC, "org")
    assert document["status"] == "ready" and document["chunk_count"] > 3
    assert document["indexed_at"] is not None
    stored = await points(worker, KNOWLEDGE, "document_id", document["id"])
    assert len(stored) == document["chunk_count"]
    assert [p.payload["chunk"] for p in stored] == list(range(len(stored)))
    assert {str(p.id) for p in stored} == {
        chunk_point_id(document["id"], i) for i in range(len(stored))
    }
    first = stored[0].payload
    assert first["org_id"] == alice.user["org_id"] and first["room_id"] is None
    assert first["owner_id"] == alice.id and first["text"].startswith("Section 0.")
    assert all(len(p.payload["text"]) <= settings.knowledge_chunk_chars for p in stored)
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
    assert await points(worker, KNOWLEDGE, "document_id", document["id"]) == []
    assert (await alice.get(f"/api/knowledge/documents/{document['id']}")).status_code == 404


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
    stored = await points(worker, MEMORIES, "memory_id", memory["id"])
    assert len(stored) == 1 and str(stored[0].id) == memory["id"]
    assert stored[0].payload == {
        "user_id": alice.id,
        "org_id": alice.user["org_id"],
        "memory_id": memory["id"],
        "text": "Prefers short answers.",
    }
    assert (await alice.delete(f"/api/memories/{memory['id']}")).status_code == 204
    await wait_gone(database_url, "memories", memory["id"])
    assert await points(worker, MEMORIES, "memory_id", memory["id"]) == []


async def test_jobs_left_behind_while_temporal_was_away_are_resumed(
    client, settings, worker, database_url
):
    """Rows stored but never handed to Temporal (rule 5) are picked up by the worker."""
    alice = await signup(client)
    pending, deleting = str(uuid.uuid4()), str(uuid.uuid4())
    store = VectorStore(worker.qdrant)
    await store.ensure(KNOWLEDGE, 384)
    await store.upsert(
        KNOWLEDGE,
        [
            (
                chunk_point_id(deleting, 0),
                [0.1] * 384,
                {
                    "org_id": alice.user["org_id"],
                    "room_id": None,
                    "document_id": deleting,
                    "owner_id": alice.id,
                    "chunk": 0,
                    "text": "old",
                },
            )
        ],
    )
    for document_id, status in ((pending, "pending"), (deleting, "deleting")):
        rows(
            database_url,
            "INSERT INTO knowledge_documents (id, org_id, owner_id, scope, title, content, status,"
            " created_at, updated_at) VALUES (%s, %s, %s, 'org', 'Left behind',"
            " 'Resume me please.', %s, now() - interval '1 hour', now() - interval '1 hour')"
            " RETURNING id",
            document_id,
            alice.user["org_id"],
            alice.id,
            status,
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
    assert len(await points(worker, KNOWLEDGE, "document_id", pending)) == 1
    assert await points(worker, KNOWLEDGE, "document_id", deleting) == []


async def test_a_deleted_document_is_never_indexed(client, settings, worker, database_url):
    """Ingestion checks the row under lock: a document being deleted gets no points."""
    alice = await signup(client)
    from activities.retrieval import RetrievalActivities
    from schemas.knowledge import DocumentRef

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
        worker.sessionmaker, VectorStore(worker.qdrant), worker.embedder, settings
    )
    result = await activities.ingest_document(DocumentRef(document_id=uuid.UUID(document_id)))
    assert result.status == "deleting"
    assert await points(worker, KNOWLEDGE, "document_id", document_id) == []


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
