"""TeamReply: several agents answer one message in parallel, then one writes the answer.

announce the panel -> reserve the synthesis's credits -> every part at once (each: reserve,
build context, stream, store as a draft, settle; retried on its own, a failed part leaves the
others running) -> gather the parts' answers -> the synthesiser streams one answer that
credits each agent -> store it once -> settle -> close (drafts cleared, `team.done`).

The parts and the synthesis are agent_runs rows driven by AgentReply's activities, so each
call reserves and settles its own credits. Cancelling the workflow (the API's cancel of any
of the team's replies) cancels every part still running, each releasing its reservation,
then the synthesis; parts already answered stay settled. History holds ids and statuses.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.team_db import TeamDbActivities, run_inputs
    from schemas.agents import AgentReplyInput, BeginReply, PlanDecision, ReplyRef, SettleResult
    from schemas.notifications import NotifyRequest
    from schemas.team import (
        PartOutcome,
        PartStatus,
        TeamClose,
        TeamRef,
        TeamReplyInput,
        TeamReplyResult,
    )
    from workflows.notify_step import notify
    from workflows.reply_steps import LOCAL, ReplyProgress, failure_code

ANSWER = PlanDecision(action="answer")


class _Cancelled(Exception):
    """The team was cancelled; every part has released or settled its credits."""


@workflow.defn
class TeamReply(ReplyProgress):
    def __init__(self) -> None:
        super().__init__("team answer")

    @workflow.run
    async def run(self, input: TeamReplyInput) -> TeamReplyResult:
        agents = ", ".join(f"@{a}" for a in input.agent_ids)
        self.headline = f"team answer by {agents} to message {input.message_id}"
        result = TeamReplyResult(team_id=input.team_id, status="running")
        await workflow.execute_local_activity_method(TeamDbActivities.begin_team, input, **LOCAL)
        parts, synthesis = run_inputs(input)
        try:
            await self._answer(parts, synthesis, result)
        except _Cancelled:
            result.status = "cancelled"
            await self._close(result)
            raise asyncio.CancelledError() from None
        await self._close(result)
        if result.reply_message_id is not None:
            await notify(NotifyRequest(kind="reply", reply_id=input.team_id))
        return result

    async def _answer(
        self, parts: list[AgentReplyInput], synthesis: AgentReplyInput, result: TeamReplyResult
    ) -> None:
        """Reserve the synthesis first (a team the asker cannot pay for does not start)."""
        try:
            begun = await self.steps.begin(synthesis)
        except (asyncio.CancelledError, ActivityError) as err:
            if not is_cancelled_exception(err):
                raise
            await self.steps.abort(synthesis.reply_id, "cancelled")
            raise _Cancelled() from None
        if begun.status != "running":
            result.status = "done" if begun.status == "done" else "error"
            result.reply_message_id = begun.reply_message_id
            result.error_code = begun.error_code
            return
        await self._parts(parts, synthesis, result)
        if not any(p.status == "done" for p in result.parts):
            self._progress("no part answered")
            await self.steps.abort(synthesis.reply_id, "team_failed")
            result.status, result.error_code = "error", "team_failed"
            return
        await self._synthesise(synthesis, begun, result)

    async def _parts(
        self, parts: list[AgentReplyInput], synthesis: AgentReplyInput, result: TeamReplyResult
    ) -> None:
        """Every part at once; a cancellation waits for each part to clean up after itself."""
        self._progress(f"{len(parts)} agents answering")
        tasks = [asyncio.create_task(self._part(part)) for part in parts]
        try:
            await asyncio.gather(*tasks)
        except asyncio.CancelledError:
            await asyncio.wait(tasks)
            await self.steps.abort(synthesis.reply_id, "cancelled")
            raise _Cancelled() from None
        finally:
            result.parts = [t.result() for t in tasks if t.done() and not t.cancelled()]
            result.credits_charged = sum(p.credits_charged for p in result.parts)

    async def _part(self, input: AgentReplyInput) -> PartOutcome:
        """One agent's draft: its own credits, retries and failure, never the whole team's."""
        ref = ReplyRef(reply_id=input.reply_id)
        outcome = PartOutcome(agent_id=input.agent_id, status="done")
        settled: SettleResult | None = None
        try:
            begun = await self.steps.begin(input, with_context=True)
            if begun.status != "running":
                outcome.status = "done" if begun.status == "done" else "error"
                outcome.error_code = begun.error_code
                return outcome
            await self.steps.gather_context(input.reply_id, begun)
            await self.steps.stream(ref, begun, ANSWER)
            settled = (await self.steps.persist(ref)).settled
        except (asyncio.CancelledError, ActivityError, ApplicationError) as err:
            code = "cancelled" if is_cancelled_exception(err) else failure_code(err)
            aborted = await self.steps.abort(input.reply_id, code)
            if aborted.status != "done":
                outcome.status = "cancelled" if code == "cancelled" else "error"
                outcome.error_code = code
                return outcome
        outcome.credits_charged = (settled or await self.steps.settle(ref)).credits_charged
        return outcome

    async def _synthesise(
        self, synthesis: AgentReplyInput, begun: BeginReply, result: TeamReplyResult
    ) -> None:
        ref = ReplyRef(reply_id=synthesis.reply_id)
        settled: SettleResult | None = None
        try:
            self._progress("gathering the answers")
            await workflow.execute_local_activity_method(
                TeamDbActivities.gather_answers, TeamRef(team_id=synthesis.reply_id), **LOCAL
            )
            await self.steps.stream(ref, begun, ANSWER)
            persisted = await self.steps.persist(ref)
        except (asyncio.CancelledError, ActivityError, ApplicationError) as err:
            cancelled = is_cancelled_exception(err)
            code = "cancelled" if cancelled else failure_code(err)
            aborted = await self.steps.abort(synthesis.reply_id, code)
            if aborted.status != "done":
                if cancelled:
                    raise _Cancelled() from None
                result.status, result.error_code = "error", code
                return
            persisted_id = aborted.reply_message_id
        else:
            persisted_id, settled = persisted.reply_message_id, persisted.settled
        result.credits_charged += (settled or await self.steps.settle(ref)).credits_charged
        result.status, result.reply_message_id = "done", persisted_id

    async def _close(self, result: TeamReplyResult) -> None:
        status: PartStatus = "error"
        if result.status in ("done", "cancelled"):
            status = "done" if result.status == "done" else "cancelled"
        self._progress(f"closing ({status})")
        await workflow.execute_local_activity_method(
            TeamDbActivities.close_team,
            TeamClose(
                team_id=result.team_id,
                status=status,
                reply_message_id=result.reply_message_id,
                parts=result.parts,
            ),
            **LOCAL,
        )
        self._progress(status)
