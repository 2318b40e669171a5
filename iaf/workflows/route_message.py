"""RouteMessage: record a message's mentions, then hand it to the agents it names."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from iaf.activities.database import ChatDatabaseActivities
    from iaf.schemas.workflows import MessageRef, RouteMessageInput, RouteMessageResult

DB_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10))


@workflow.defn
class RouteMessage:
    @workflow.run
    async def run(self, input: RouteMessageInput) -> RouteMessageResult:
        recorded = await workflow.execute_local_activity_method(
            ChatDatabaseActivities.record_mentions,
            MessageRef(message_id=input.message_id),
            start_to_close_timeout=timedelta(seconds=15),
            retry_policy=DB_RETRY,
        )
        return RouteMessageResult(
            message_id=input.message_id,
            agent_ids=recorded.agent_ids,
            mentioned_user_ids=recorded.user_ids,
        )
