"""RemoveVectors (`unindex-{kind}-{id}`): delete a document's, memory's or deleted room's points,
then its row.

Retried until it succeeds: a deletion the user asked for must not stop half-way. Until it
does, the row's "deleting" status already keeps the item out of every agent's context.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.retrieval import RetrievalActivities
    from schemas.knowledge import IndexResult, RemoveVectorsInput, VectorJob


@workflow.defn
class RemoveVectors:
    @workflow.run
    async def run(self, job: VectorJob) -> IndexResult:
        workflow.set_current_details(f"remove the vectors of {job.kind} {job.item_id}")
        return await workflow.execute_activity_method(
            RetrievalActivities.remove_vectors,
            RemoveVectorsInput(kind=job.kind, item_id=job.item_id),
            task_queue=job.retrieval_task_queue,
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=5)
            ),
        )
