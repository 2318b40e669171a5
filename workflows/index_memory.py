"""IndexMemory (`memory-{memory_id}`): embed one user memory into the "memories" collection."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.agents_db import KnowledgeDbActivities
    from activities.retrieval import RetrievalActivities
    from schemas.knowledge import IndexFailure, IndexResult, MemoryRef, VectorJob

INDEX_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
)


@workflow.defn
class IndexMemory:
    @workflow.run
    async def run(self, job: VectorJob) -> IndexResult:
        headline = f"index memory {job.item_id}"
        workflow.set_current_details(f"{headline}, step: embedding, storing the vector")
        try:
            result = await workflow.execute_activity_method(
                RetrievalActivities.index_memory,
                MemoryRef(memory_id=job.item_id),
                task_queue=job.retrieval_task_queue,
                start_to_close_timeout=timedelta(minutes=2),
                retry_policy=INDEX_RETRY,
            )
        except ActivityError as err:
            reason = type(err.cause).__name__ if err.cause else "ActivityError"
            await workflow.execute_local_activity_method(
                KnowledgeDbActivities.mark_memory_failed,
                IndexFailure(item_id=job.item_id, reason=reason),
                start_to_close_timeout=timedelta(seconds=15),
            )
            workflow.set_current_details(f"{headline}: failed ({reason})")
            return IndexResult(status="failed")
        workflow.set_current_details(f"{headline}: {result.status}")
        return result
