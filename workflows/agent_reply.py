"""AgentReply: one agent answers one message, durably, and may hand over to another agent.

reserve credits -> build context (retrieval, refined up to persona.max_steps) -> plan ->
stream the answer into room_events -> store the reply once -> settle credits -> hand off.
Short database steps are local activities; retrieval runs on the retrieval task queue; the
streaming step heartbeats, and a retry of it starts afresh with agent.reset. History holds
IDs, counts and scores only: text stays in PostgreSQL (agent_runs.context, messages).

Cancellation (the API's cancel endpoint) before the reply is stored releases the credits and
ends with agent.error "cancelled"; once the reply is stored it only skips the hand-off.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from activities.agents_db import AgentDbActivities
    from activities.llm import LlmActivities
    from activities.retrieval import CONTEXT_NOT_SERVED, RetrievalActivities
    from iaf.agents.context import plan_step
    from schemas.agents import (
        AbortRequest,
        AbortResult,
        AgentReplyInput,
        AgentReplyResult,
        BeginReply,
        ContextRequest,
        ContextSummary,
        PersistResult,
        PlanDecision,
        ReplyRef,
        SettleResult,
        StartReplies,
        StreamRequest,
        StreamResult,
    )

LOCAL: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=20),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(milliseconds=200),
        maximum_interval=timedelta(seconds=5),
        maximum_attempts=20,
    ),
}
CONTEXT_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=500),
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=5,
    non_retryable_error_types=["ReplyMissing"],
)
STREAM_NON_RETRYABLE = ["LlmRejected", "ReplyNotRunning", "UnknownAgent"]


class _Stored(Exception):
    """Cancellation arrived after the reply was stored: finish as done, skip the hand-off."""

    def __init__(self, aborted: AbortResult) -> None:
        super().__init__("stored")
        self.aborted = aborted


@workflow.defn
class AgentReply:
    def __init__(self) -> None:
        self.stage = "starting"
        self.context_remote = False
        self.headline = "reply"

    @workflow.query
    def progress(self) -> str:
        return self.stage

    def _progress(self, stage: str) -> None:
        """What the Temporal UI shows as current details (ids and the step, no content)."""
        self.stage = stage
        since = workflow.now().strftime("%H:%M:%S")
        workflow.set_current_details(f"{self.headline}, step: {stage} (since {since} UTC)")

    @workflow.run
    async def run(self, input: AgentReplyInput) -> AgentReplyResult:
        self.headline = f"reply by @{input.agent_id} to message {input.message_id}"
        if input.parent_reply_id:
            self.headline += f" (handed over by {input.parent_reply_id})"
        ref = ReplyRef(reply_id=input.reply_id)
        result = AgentReplyResult(reply_id=input.reply_id, status="running")
        cancelled = False
        try:
            begun, persisted = await self._answer(input, result)
        except _Stored as stored:
            cancelled = True
            begun, persisted = (
                BeginReply(status="running"),
                PersistResult(reply_message_id=stored.aborted.reply_message_id),
            )
        except (ActivityError, ApplicationError) as err:
            # Local activities (the database steps) fail with the bare ApplicationError.
            code = _failure_code(err)
            self._progress(f"failed ({code})")
            await self._abort(input, code)
            result.status, result.error_code = "error", code
            return result
        if result.status != "running":
            return result
        settled = await self._settle(ref)
        result.status = "done"
        result.reply_message_id = persisted.reply_message_id
        result.credits_charged = settled.credits_charged
        if not cancelled:
            await self._hand_off(input, begun, persisted, result)
        self._progress("done")
        return result

    async def _answer(
        self, input: AgentReplyInput, result: AgentReplyResult
    ) -> tuple[BeginReply, PersistResult]:
        """Everything up to the stored reply; a cancellation here cleans up and re-raises."""
        ref = ReplyRef(reply_id=input.reply_id)
        try:
            self._progress("reserving credits")
            begun: BeginReply = await workflow.execute_local_activity_method(
                AgentDbActivities.begin_reply, input, **LOCAL
            )
            if begun.status != "running":
                result.status = "done" if begun.status == "done" else "error"
                result.reply_message_id = begun.reply_message_id
                result.error_code = begun.error_code
                return begun, PersistResult(reply_message_id=begun.reply_message_id)
            result.context_steps, decision = await self._gather_context(input, begun)
            streamed = await self._stream(ref, begun, decision)
            result.prompt_tokens = streamed.prompt_tokens
            result.completion_tokens = streamed.completion_tokens
            self._progress("storing the reply")
            persisted: PersistResult = await workflow.execute_local_activity_method(
                AgentDbActivities.persist_reply, ref, **LOCAL
            )
            return begun, persisted
        except (asyncio.CancelledError, ActivityError) as err:
            if not is_cancelled_exception(err):
                raise
            self._progress("cancelled")
            aborted = await self._abort(input, "cancelled")
            if aborted.status == "done":
                raise _Stored(aborted) from None
            raise asyncio.CancelledError() from None

    async def _gather_context(
        self, input: AgentReplyInput, begun: BeginReply
    ) -> tuple[int, PlanDecision]:
        """Retrieve, then let the planner answer, hand off, or refine and retrieve again."""
        decision = PlanDecision(action="answer")
        steps = 0
        for step in range(begun.max_steps):
            self._progress(f"building context (step {step + 1})")
            summary = await self._context_step(
                ContextRequest(reply_id=input.reply_id, step=step), begun
            )
            steps = step + 1
            decision = plan_step(summary, begun.max_steps, begun.retrieval_min_score)
            if decision.action != "refine":
                break
        return steps, decision

    async def _context_step(self, request: ContextRequest, begun: BeginReply) -> ContextSummary:
        """A local activity where this worker serves retrieval, else the retrieval queue."""
        if begun.context_local and not self.context_remote:
            try:
                return await workflow.execute_local_activity_method(
                    RetrievalActivities.build_reply_context,
                    request,
                    start_to_close_timeout=timedelta(seconds=60),
                    retry_policy=CONTEXT_RETRY,
                )
            except (ActivityError, ApplicationError) as err:
                # A local activity's failure may arrive unwrapped, without its ActivityError.
                cause = err.cause if isinstance(err, ActivityError) else err
                if not (isinstance(cause, ApplicationError) and cause.type == CONTEXT_NOT_SERVED):
                    raise
                self.context_remote = True
        return await workflow.execute_activity_method(
            RetrievalActivities.build_reply_context,
            request,
            task_queue=begun.retrieval_task_queue or None,
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=CONTEXT_RETRY,
        )

    async def _stream(
        self, ref: ReplyRef, begun: BeginReply, decision: PlanDecision
    ) -> StreamResult:
        self._progress("streaming the answer")
        return await workflow.execute_activity_method(
            LlmActivities.stream_reply,
            StreamRequest(
                reply_id=ref.reply_id,
                handoff_hint=decision.target if decision.action == "handoff" else None,
            ),
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=timedelta(seconds=begun.stream_heartbeat_seconds),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=begun.retry_initial_seconds),
                backoff_coefficient=2.0,
                maximum_attempts=begun.stream_max_attempts,
                non_retryable_error_types=STREAM_NON_RETRYABLE,
            ),
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )

    async def _settle(self, ref: ReplyRef) -> SettleResult:
        """Settling is bookkeeping the stored reply owes: a late cancellation does not skip it."""
        self._progress("settling credits")
        try:
            return await workflow.execute_local_activity_method(
                AgentDbActivities.settle_reply, ref, **LOCAL
            )
        except (asyncio.CancelledError, ActivityError) as err:
            if not is_cancelled_exception(err):
                raise
            return await workflow.execute_local_activity_method(
                AgentDbActivities.settle_reply, ref, **LOCAL
            )

    async def _hand_off(
        self,
        input: AgentReplyInput,
        begun: BeginReply,
        persisted: PersistResult,
        result: AgentReplyResult,
    ) -> None:
        """Start the next agent the reply mentions, unless the chain is too deep or loops."""
        chain = [*input.chain, input.agent_id]
        candidates = [a for a in persisted.mentioned_agents if a != input.agent_id]
        if persisted.reply_message_id is None or not candidates:
            return
        target = next((a for a in candidates if a not in chain), None)
        if target is None:
            result.handoff_blocked = "loop"
            return
        if input.depth + 1 > begun.max_handoff_depth:
            result.handoff_blocked = "max_depth"
            return
        self._progress(f"handing off to @{target}")
        await workflow.execute_local_activity_method(
            AgentDbActivities.start_replies,
            StartReplies(
                message_id=persisted.reply_message_id,
                room_id=input.room_id,
                requested_by=input.requested_by,
                agent_ids=[target],
                depth=input.depth + 1,
                chain=chain,
                parent_reply_id=input.reply_id,
                root_message_id=input.root_message_id or input.message_id,
            ),
            **LOCAL,
        )
        result.handed_off_to = target

    async def _abort(self, input: AgentReplyInput, code: str) -> AbortResult:
        return await workflow.execute_local_activity_method(
            AgentDbActivities.abort_reply,
            AbortRequest(reply_id=input.reply_id, code=code),
            **LOCAL,
        )


def _failure_code(err: ActivityError | ApplicationError) -> str:
    cause = err.cause if isinstance(err, ActivityError) else err
    if isinstance(cause, ApplicationError) and cause.type in ("LlmRejected", "LlmUnavailable"):
        return "llm_rejected" if cause.type == "LlmRejected" else "llm_failed"
    if isinstance(err, ActivityError) and "stream" in (err.activity_type or ""):
        return "llm_failed"
    return "failed"
