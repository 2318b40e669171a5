"""RouteMessage: record a message's mentions, notify people, and start the agents it needs.

Agents come from @mentions; in a room with auto-routing, a message that mentions no agent
goes to the agent its keywords point to, or, when they are ambiguous, to the one an LLM
classifier picks. Replies start from a local activity with the worker's own client and
`request_eager_start`, so no child-workflow hop or matching round trip precedes the reply.
RouteMessage stays the system of record for mentions (messages.metadata.mentions).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.agents_db import AgentDbActivities
    from activities.chat_db import ChatDbActivities
    from activities.llm import LlmActivities
    from activities.team_db import TeamDbActivities
    from schemas.agents import ClassifyRequest, StartReplies
    from schemas.notifications import NotifyRequest
    from schemas.team import StartTeam
    from schemas.workflows import (
        MessageRef,
        RecordedMentions,
        RouteMessageInput,
        RouteMessageResult,
    )
    from workflows.notify_step import notify
    from workflows.retry_policies import DB_RETRY

CLASSIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=500),
    maximum_attempts=3,
    non_retryable_error_types=["LlmRejected"],
)


@workflow.defn
class RouteMessage:
    @workflow.run
    async def run(self, input: RouteMessageInput) -> RouteMessageResult:
        recorded, result = await self._route(input)
        people = recorded.routable and (recorded.user_ids or recorded.mentions_all)
        if people and workflow.patched("notify-mentions"):
            await notify(NotifyRequest(kind="mention", message_id=input.message_id))
        return result

    async def _route(self, input: RouteMessageInput) -> tuple[RecordedMentions, RouteMessageResult]:
        workflow.set_current_details(f"message {input.message_id}, step: recording mentions")
        recorded = await workflow.execute_local_activity_method(
            ChatDbActivities.record_mentions,
            MessageRef(message_id=input.message_id),
            start_to_close_timeout=timedelta(seconds=15),
            retry_policy=DB_RETRY,
        )
        result = RouteMessageResult(
            message_id=input.message_id,
            agent_ids=recorded.agent_ids,
            mentioned_user_ids=recorded.user_ids,
            routed_by="mention" if recorded.agent_ids else None,
        )
        if not recorded.routable or recorded.sender_user_id is None:
            workflow.set_current_details(f"message {input.message_id}: nothing to route")
            return recorded, result
        if recorded.team_agent_ids:
            await self._start_team(recorded, result)
            return recorded, result
        if not recorded.agent_ids and recorded.auto_route:
            await self._route_by_intent(recorded, result)
        if result.agent_ids:
            agents = ", ".join(f"@{a}" for a in result.agent_ids)
            workflow.set_current_details(
                f"message {input.message_id}, step: starting replies by {agents}"
            )
            started = await workflow.execute_local_activity_method(
                AgentDbActivities.start_replies,
                StartReplies(
                    message_id=input.message_id,
                    room_id=recorded.room_id,
                    requested_by=recorded.sender_user_id,
                    agent_ids=result.agent_ids,
                ),
                start_to_close_timeout=timedelta(seconds=20),
                retry_policy=DB_RETRY,
            )
            result.reply_ids = [*started.started, *started.already_started]
        workflow.set_current_details(_routed(input.message_id, result))
        return recorded, result

    async def _start_team(self, recorded: RecordedMentions, result: RouteMessageResult) -> None:
        """Several agents answer together: one TeamReply (the API may have started it)."""
        assert recorded.sender_user_id is not None
        agents = ", ".join(f"@{a}" for a in recorded.team_agent_ids)
        workflow.set_current_details(
            f"message {recorded.message_id}, step: starting the team answer of {agents}"
        )
        await workflow.execute_local_activity_method(
            TeamDbActivities.start_team,
            StartTeam(
                message_id=recorded.message_id,
                room_id=recorded.room_id,
                requested_by=recorded.sender_user_id,
                agent_ids=recorded.team_agent_ids,
            ),
            start_to_close_timeout=timedelta(seconds=20),
            retry_policy=DB_RETRY,
        )
        result.agent_ids, result.routed_by = recorded.team_agent_ids, "team"
        result.reply_ids = [f"team-{recorded.message_id}"]
        workflow.set_current_details(_routed(recorded.message_id, result))

    async def _route_by_intent(
        self, recorded: RecordedMentions, result: RouteMessageResult
    ) -> None:
        if recorded.intent_agent_id is not None:
            result.agent_ids, result.routed_by = [recorded.intent_agent_id], "keywords"
            return
        if not recorded.intent_ambiguous:
            return
        workflow.set_current_details(
            f"message {recorded.message_id}, step: classifying intent (LLM)"
        )
        try:
            classified = await workflow.execute_activity_method(
                LlmActivities.classify_intent,
                ClassifyRequest(
                    message_id=recorded.message_id, candidates=recorded.intent_candidates
                ),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=CLASSIFY_RETRY,
            )
        except ActivityError:
            workflow.logger.warning("intent classifier failed; the message stays unrouted")
            return
        if classified.agent_id is not None:
            result.agent_ids, result.routed_by = [classified.agent_id], "classifier"


def _routed(message_id: int, result: RouteMessageResult) -> str:
    if not result.agent_ids:
        return f"message {message_id}: no agent to start"
    agents = ", ".join(f"@{a}" for a in result.agent_ids)
    return f"message {message_id}: routed to {agents} (by {result.routed_by})"
