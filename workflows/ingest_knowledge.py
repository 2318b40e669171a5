"""IngestKnowledge (`ingest-{document_id}`): chunk, embed and upsert one document into Qdrant.

The document's status in PostgreSQL (pending -> processing -> ready | failed) is what clients
poll; the workflow carries the document id only.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.agents_db import KnowledgeDbActivities
    from activities.retrieval import RetrievalActivities
    from schemas.knowledge import DocumentRef, IndexFailure, IngestResult, VectorJob

INGEST_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
)


@workflow.defn
class IngestKnowledge:
    @workflow.run
    async def run(self, job: VectorJob) -> IngestResult:
        headline = f"ingest document {job.item_id}"
        workflow.set_current_details(f"{headline}, step: chunking, embedding, storing vectors")
        try:
            result = await workflow.execute_activity_method(
                RetrievalActivities.ingest_document,
                DocumentRef(document_id=job.item_id),
                task_queue=job.retrieval_task_queue,
                start_to_close_timeout=timedelta(minutes=10),
                heartbeat_timeout=timedelta(minutes=5),
                retry_policy=INGEST_RETRY,
            )
        except ActivityError as err:
            reason = type(err.cause).__name__ if err.cause else "ActivityError"
            await workflow.execute_local_activity_method(
                KnowledgeDbActivities.mark_document_failed,
                IndexFailure(item_id=job.item_id, reason=reason),
                start_to_close_timeout=timedelta(seconds=15),
            )
            workflow.set_current_details(f"{headline}: failed ({reason}); the owner can retry it")
            # A failed run, not a completed one: `ExecutionStatus = "Failed"` finds it.
            # Its cause (the activity's failure) names what went wrong.
            raise ApplicationError(
                "ingestion failed", type="IngestionFailed", non_retryable=True
            ) from err
        workflow.set_current_details(f"{headline}: {result.status}, {result.chunks} chunks")
        return result
