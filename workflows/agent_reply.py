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

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.agents_db import AgentDbActivities
    from schemas.agents import (
        AbortResult,
        AgentReplyInput,
        AgentReplyResult,
        BeginReply,
        PersistResult,
        ReplyRef,
        StartReplies,
    )
    from schemas.notifications import NotifyRequest
    from workflows.notify_step import notify
    from workflows.reply_steps import LOCAL, ReplyProgress, failure_code


class _Stored(Exception):
    """Cancellation arrived after the reply was stored: finish as done, skip the hand-off."""

    def __init__(self, aborted: AbortResult) -> None:
        super().__init__("stored")
        self.aborted = aborted


@workflow.defn
class AgentReply(ReplyProgress):
    def __init__(self) -> None:
        super().__init__("reply")

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
            code = failure_code(err)
            self._progress(f"failed ({code})")
            await self.steps.abort(input.reply_id, code)
            result.status, result.error_code = "error", code
            return result
        if result.status != "running":
            return result
        settled = persisted.settled or await self.steps.settle(ref)
        result.status = "done"
        result.reply_message_id = persisted.reply_message_id
        result.credits_charged = settled.credits_charged
        if not cancelled:
            await self._hand_off(input, begun, persisted, result)
        unnotified = result.reply_message_id is not None and not persisted.notified
        if unnotified and workflow.patched("notify-reply"):
            self._progress("notifying")
            await notify(NotifyRequest(kind="reply", reply_id=input.reply_id))
        self._progress("done")
        return result

    async def _answer(
        self, input: AgentReplyInput, result: AgentReplyResult
    ) -> tuple[BeginReply, PersistResult]:
        """Everything up to the stored reply; a cancellation here cleans up and re-raises."""
        ref = ReplyRef(reply_id=input.reply_id)
        try:
            begun = await self.steps.begin(input, with_context=True)
            if begun.status != "running":
                result.status = "done" if begun.status == "done" else "error"
                result.reply_message_id = begun.reply_message_id
                result.error_code = begun.error_code
                return begun, PersistResult(reply_message_id=begun.reply_message_id)
            result.context_steps, decision = await self.steps.gather_context(input.reply_id, begun)
            streamed = await self.steps.stream(ref, begun, decision)
            result.prompt_tokens = streamed.prompt_tokens
            result.completion_tokens = streamed.completion_tokens
            persisted = await self.steps.persist(ReplyRef(reply_id=input.reply_id, notify=True))
            return begun, persisted
        except (asyncio.CancelledError, ActivityError) as err:
            if not is_cancelled_exception(err):
                raise
            self._progress("cancelled")
            aborted = await self.steps.abort(input.reply_id, "cancelled")
            if aborted.status == "done":
                raise _Stored(aborted) from None
            raise asyncio.CancelledError() from None

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
