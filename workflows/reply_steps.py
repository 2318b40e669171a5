"""The steps of one agent's answer, shared by AgentReply and TeamReply (not a workflow).

reserve credits -> build context (retrieval, refined up to persona.max_steps) -> stream ->
store -> settle, or abort. Short database steps are local activities; the context step is a
local activity where the worker serves retrieval, else it runs on the retrieval task queue;
the streaming step heartbeats, and a retry of it starts afresh with agent.reset. Retry
policies and timeouts are set here, at the call sites, for every caller alike.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import temporalio.exceptions
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
        BeginReply,
        ContextRequest,
        ContextSummary,
        PersistResult,
        PlanDecision,
        ReplyRef,
        SettleResult,
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
# Histories from before it ran begin_agent_reply and step 0 of the context apart.
BEGIN_WITH_CONTEXT = "begin-with-context"
# Histories from before a stream whose worker was lost started over instead of failing.
RESTART_AFTER_LOST_WORKER = "stream-restart-after-lost-worker"


class ReplySteps:
    """One workflow's calls for its answers; `progress` says which step runs (UI details)."""

    def __init__(self, progress: Callable[[str], None]) -> None:
        self.progress = progress
        # Once a local context step is refused (this worker serves no retrieval), use the queue.
        self.context_remote = False

    async def begin(self, input: AgentReplyInput, with_context: bool = False) -> BeginReply:
        """Reserve credits; with_context: also build step 0 of the context in the same local
        activity where the worker serves retrieval (one workflow activation fewer)."""
        if with_context and workflow.patched(BEGIN_WITH_CONTEXT):
            self.progress("reserving credits and building context (step 1)")
            begun: BeginReply = await workflow.execute_local_activity_method(
                AgentDbActivities.begin_reply_with_context,
                input,
                start_to_close_timeout=timedelta(seconds=60),
                retry_policy=LOCAL["retry_policy"],
            )
            return begun
        self.progress("reserving credits")
        begun = await workflow.execute_local_activity_method(
            AgentDbActivities.begin_reply, input, **LOCAL
        )
        return begun

    async def gather_context(self, reply_id: str, begun: BeginReply) -> tuple[int, PlanDecision]:
        """Retrieve, then let the planner answer, hand off, or refine and retrieve again."""
        decision = PlanDecision(action="answer")
        steps = 0
        for step in range(begun.max_steps):
            self.progress(f"building context (step {step + 1})")
            summary = (
                begun.first_context
                if step == 0 and begun.first_context is not None
                else await self.context_step(ContextRequest(reply_id=reply_id, step=step), begun)
            )
            steps = step + 1
            decision = plan_step(summary, begun.max_steps, begun.retrieval_min_score)
            if decision.action != "refine":
                break
        return steps, decision

    async def context_step(self, request: ContextRequest, begun: BeginReply) -> ContextSummary:
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

    async def stream(
        self, ref: ReplyRef, begun: BeginReply, decision: PlanDecision
    ) -> StreamResult:
        """Stream the answer. Temporal retries a failed attempt; when the attempts ran out
        on a worker that stopped heartbeating, the stream starts over with fresh attempts
        (at most stream_worker_loss_restarts times): a reply is not failed for the deaths of
        the workers that streamed it."""
        request = StreamRequest(
            reply_id=ref.reply_id,
            handoff_hint=decision.target if decision.action == "handoff" else None,
        )
        restarts = 0
        while True:
            self.progress(
                "streaming the answer"
                + (f" (restart {restarts} after a lost worker)" if restarts else "")
            )
            try:
                return await self._stream_once(request, begun)
            except ActivityError as err:
                if not (
                    _lost_worker(err)
                    and restarts < begun.stream_worker_loss_restarts
                    and workflow.patched(RESTART_AFTER_LOST_WORKER)
                ):
                    raise
                restarts += 1

    async def _stream_once(self, request: StreamRequest, begun: BeginReply) -> StreamResult:
        return await workflow.execute_activity_method(
            LlmActivities.stream_reply,
            request,
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

    async def persist(self, ref: ReplyRef) -> PersistResult:
        """Store the reply; the same local activity settles it (PersistResult.settled)."""
        self.progress("storing the reply")
        persisted: PersistResult = await workflow.execute_local_activity_method(
            AgentDbActivities.persist_reply, ref, **LOCAL
        )
        return persisted

    async def settle(self, ref: ReplyRef) -> SettleResult:
        """Settling is bookkeeping the stored reply owes: a late cancellation does not skip it."""
        self.progress("settling credits")
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

    async def abort(self, reply_id: str, code: str) -> AbortResult:
        """Final failure or cancellation: releases the credits and tells the room, once."""
        return await workflow.execute_local_activity_method(
            AgentDbActivities.abort_reply, AbortRequest(reply_id=reply_id, code=code), **LOCAL
        )


def _lost_worker(err: ActivityError) -> bool:
    """The last attempt missed its heartbeats: its worker died or stalled (not the model)."""
    cause = err.cause
    return (
        isinstance(cause, temporalio.exceptions.TimeoutError)
        and cause.type == temporalio.exceptions.TimeoutType.HEARTBEAT
    )


def failure_code(err: BaseException) -> str:
    """What the room is told about a failed answer (never the exception's text)."""
    cause = err.cause if isinstance(err, ActivityError) else err
    if isinstance(cause, ApplicationError) and cause.type in ("LlmRejected", "LlmUnavailable"):
        return "llm_rejected" if cause.type == "LlmRejected" else "llm_failed"
    if isinstance(err, ActivityError) and "stream" in (err.activity_type or ""):
        return "llm_failed"
    return "failed"


class ReplyProgress:
    """The base of the reply workflows: the `progress` query and the Temporal UI's current
    details (the step and ids, never content), fed by their ReplySteps."""

    def __init__(self, headline: str) -> None:
        self.stage = "starting"
        self.headline = headline
        self.steps = ReplySteps(self._progress)

    @workflow.query
    def progress(self) -> str:
        return self.stage

    def _progress(self, stage: str) -> None:
        self.stage = stage
        since = workflow.now().strftime("%H:%M:%S")
        workflow.set_current_details(f"{self.headline}, step: {stage} (since {since} UTC)")
