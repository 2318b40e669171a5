"""AgentReply's database steps, run as local activities: short, retried, idempotent.

Each step is one transaction keyed by the reply id: the agent_runs row (locked) says what
already happened, and ledger entries are unique per (source, reply id). So a retried step,
a replayed workflow or a duplicate start never books credits twice, never stores a second
reply message and never sends a second agent.start / agent.done / agent.error.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import Client

from activities.notifications import NotificationActivities
from iaf.agents.context import context_refs
from iaf.agents.mentions import parse_mentions, unique_targets
from iaf.agents.registry import get_registry
from iaf.db.models import AgentRun
from iaf.db.repositories.agents import AgentRunRepository
from iaf.db.repositories.knowledge import KnowledgeRepository
from iaf.db.repositories.ledger import LedgerRepository
from iaf.db.repositories.memories import MemoryRepository
from iaf.db.repositories.message_copies import MessageCopyRepository
from iaf.db.repositories.messages import MessageRepository
from iaf.db.repositories.room_events import EventRepository
from iaf.db.repositories.users import UserRepository
from iaf.settings import Settings
from iaf.workflow_calls import reply_workflow_id, start_agent_reply
from schemas.agents import (
    AbortRequest,
    AbortResult,
    AgentReplyInput,
    BeginReply,
    ContextRequest,
    ContextSummary,
    PersistResult,
    ReplyRef,
    SettleResult,
    StartedReplies,
    StartReplies,
)
from schemas.chat import MessageOut
from schemas.knowledge import IndexFailure
from schemas.notifications import NotifyRequest

log = logging.getLogger(__name__)
ContextBuilder = Callable[[ContextRequest], Awaitable[ContextSummary]]

RESERVE = "reply-reserve"
SETTLE = "reply-settle"
RELEASE = "reply-release"

ERROR_MESSAGES = {
    "cancelled": "The reply was cancelled.",
    "insufficient_credits": "Not enough credits for an agent reply.",
    "unknown_agent": "There is no such agent.",
    "no_requester": "The person who asked is no longer here.",
    "llm_failed": "The language model did not answer; please try again later.",
    "llm_rejected": "The language model refused the request.",
    "failed": "The agent could not answer; please try again later.",
    "team_failed": "None of the agents asked could answer; please try again later.",
    "source_changed": "The message it answered was edited or deleted.",
}


def team_summary(team_id: str, context: dict[str, Any] | None) -> dict[str, Any]:
    """What a team answer's message records of its panel (ids only)."""
    team = (context or {}).get("team") or {}
    return {
        "team_id": team_id,
        "agents": list(team.get("agents") or []),
        "answered": list(team.get("answered") or []),
    }


def credits_for(usage: dict[str, Any], per_1k_tokens: int) -> int:
    tokens = int(usage.get("prompt_tokens", 0)) + int(usage.get("completion_tokens", 0))
    return math.ceil(tokens * per_1k_tokens / 1000) if tokens else 0


class AgentDbActivities:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        temporal: Client,
        settings: Settings,
        *,
        serves_retrieval: bool = False,
        context: ContextBuilder | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.temporal = temporal
        self.settings = settings
        self.serves_retrieval = serves_retrieval
        # This process's context step (RetrievalActivities.build_reply_context), when it
        # serves retrieval: begin_reply_with_context then builds step 0 in the same activity.
        self.context = context
        self.notifications = NotificationActivities(sessionmaker, temporal, settings)

    @activity.defn(name="start_agent_replies")
    async def start_replies(self, request: StartReplies) -> StartedReplies:
        """Record each run as pending, then start its workflow eagerly with the worker's client."""
        inputs = [
            AgentReplyInput(
                reply_id=reply_workflow_id(request.message_id, agent_id),
                message_id=request.message_id,
                room_id=request.room_id,
                agent_id=agent_id,
                requested_by=request.requested_by,
                depth=request.depth,
                chain=request.chain,
                parent_reply_id=request.parent_reply_id,
                root_message_id=request.root_message_id,
            )
            for agent_id in request.agent_ids
        ]
        async with self.sessionmaker() as session:
            for input in inputs:
                await AgentRunRepository(session).create(input)
            await session.commit()
        result = StartedReplies()
        for input in inputs:
            if await start_agent_reply(self.temporal, self.settings, input):
                result.started.append(input.reply_id)
            else:
                result.already_started.append(input.reply_id)
        return result

    def _begin(self, status: str, **values: Any) -> BeginReply:
        s = self.settings
        return BeginReply(
            status=status,
            max_handoff_depth=s.agent_max_handoff_depth,
            retrieval_min_score=s.retrieval_min_score,
            stream_heartbeat_seconds=s.reply_heartbeat_seconds,
            stream_max_attempts=s.reply_stream_max_attempts,
            stream_worker_loss_restarts=s.reply_stream_worker_loss_restarts,
            retry_initial_seconds=s.reply_retry_initial_seconds,
            retrieval_task_queue=s.temporal_retrieval_task_queue,
            context_local=self.serves_retrieval,
            **values,
        )

    @activity.defn(name="begin_agent_reply")
    async def begin_reply(self, input: AgentReplyInput) -> BeginReply:
        """Create or resume the run, reserve credits, announce agent.start (once)."""
        persona = get_registry().get(input.agent_id)
        async with self.sessionmaker() as session:
            runs = AgentRunRepository(session)
            run = await runs.create_locked(input)
            if run.status == "done":
                return self._begin("done", reply_message_id=run.reply_message_id)
            if run.status in ("error", "cancelled"):
                return self._begin("refused", error_code=(run.error or {}).get("code"))
            refusal = None
            if persona is None:
                refusal = "unknown_agent"
            elif run.requested_by is None:
                refusal = "no_requester"
            elif not await self._reserve(session, run):
                refusal = "insufficient_credits"
            if refusal is not None:
                await self._fail(session, run, refusal)
                await session.commit()
                return self._begin("refused", error_code=refusal)
            assert persona is not None
            if run.status == "pending":
                start = {
                    "reply_id": run.reply_id,
                    "agent_id": run.agent_id,
                    "message_id": run.message_id,
                    "agent_name": persona.name,
                }
                if run.team_id is not None:  # clients group a team's answers under one card
                    start |= {"team_id": run.team_id, "part": run.is_team_part}
                await runs.start_running(run.reply_id, start)
            await session.commit()
        return self._begin("running", max_steps=persona.max_steps)

    @activity.defn(name="begin_agent_reply_with_context")
    async def begin_reply_with_context(self, input: AgentReplyInput) -> BeginReply:
        """begin_reply, then step 0 of the context where this worker serves retrieval: one
        local activity (one workflow activation) where there were two."""
        begun = await self.begin_reply(input)
        if begun.status == "running" and self.context is not None:
            request = ContextRequest(reply_id=input.reply_id, step=0)
            begun.first_context = await self.context(request)
        return begun

    async def _reserve(self, session: AsyncSession, run: AgentRun) -> bool:
        amount = self.settings.reply_credit_reservation
        if amount <= 0:
            return True
        assert run.requested_by is not None
        ledger = LedgerRepository(session)
        await ledger.lock_user(run.requested_by)
        return await ledger.book_if_covered(
            run.requested_by,
            amount,
            "reservation",
            RESERVE,
            run.reply_id,
            {"room_id": str(run.room_id), "agent_id": run.agent_id},
        )

    @activity.defn(name="persist_agent_reply")
    async def persist_reply(self, ref: ReplyRef) -> PersistResult:
        """Store the answer once, settle its credits once, and queue the notification: each
        part idempotent, so a retry after any of them completes the rest."""
        persisted = await self._store(ref)
        persisted.settled = await self.settle_reply(ref)
        if ref.notify and persisted.reply_message_id is not None:
            persisted.notified = await self._notify(ref.reply_id)
        return persisted

    async def _notify(self, reply_id: str) -> bool:
        """Best effort here: on failure AgentReply runs the notify step with its retries."""
        try:
            await self.notifications.notify(NotifyRequest(kind="reply", reply_id=reply_id))
        except Exception as exc:
            log.warning("reply notification not queued yet (%s)", type(exc).__name__)
            return False
        return True

    async def _store(self, ref: ReplyRef) -> PersistResult:
        """The streamed answer as the reply message, once; then message.new, agent.done."""
        async with self.sessionmaker() as session:
            runs = AgentRunRepository(session)
            run = await runs.get(ref.reply_id, for_update=True)
            if run is None or (run.reply_message_id is None and run.status != "running"):
                return PersistResult(reply_message_id=None)
            if run.reply_message_id is not None:
                return await self._persisted(session, run.reply_message_id)
            if await self._source_changed(session, run):
                # An answer to text that no longer exists would be a copy of it.
                await self._fail(session, run, "source_changed")
                await session.commit()
                return PersistResult(reply_message_id=None)
            events = EventRepository(session)
            if run.is_team_part:
                # A draft for the team's synthesis: no message of its own.
                await events.append(
                    run.room_id,
                    "agent.done",
                    {
                        "reply_id": run.reply_id,
                        "agent_id": run.agent_id,
                        "message_id": None,
                        "team_id": run.team_id,
                    },
                )
                await runs.update(run.reply_id, status="done")
                await session.commit()
                return PersistResult(reply_message_id=None)
            answer = (run.answer or "").strip()
            message_id: int | None = None
            agents: list[str] = []
            if answer:
                handles = await UserRepository(session).handles_in_room(run.room_id)
                mentions = parse_mentions(answer, get_registry().names(), handles.keys())
                stored = [
                    {
                        "kind": m.kind,
                        "id": str(handles[m.id.lower()]) if m.kind == "user" else m.id,
                        "start": m.start,
                        "end": m.end,
                    }
                    for m in mentions
                ]
                sources = (run.context or {}).get("sources") or []
                meta = {
                    "agent_id": run.agent_id,
                    "depth": run.depth,
                    "mentions": stored,
                    "sources": [s["document_id"] for s in sources],
                    "org_knowledge": any(s.get("org") for s in sources),
                }
                if run.team_id is not None:  # the team's answer: who took part, who answered
                    meta["sources"] = []
                    meta["team"] = team_summary(run.team_id, run.context)
                message = await runs.insert_reply_message(run, answer, meta)
                message_id = message.id
                await events.append(
                    run.room_id, "message.new", MessageOut.of(message).model_dump(mode="json")
                )
                targets = unique_targets(mentions)
                agents = [m.id for m in targets if m.kind == "agent"]
                for user_id in {s["id"] for s in stored if s["kind"] == "user"}:
                    await events.append(
                        run.room_id, "mention", {"message_id": message.id, "user_id": user_id}
                    )
            await events.append(
                run.room_id,
                "agent.done",
                {"reply_id": run.reply_id, "agent_id": run.agent_id, "message_id": message_id},
            )
            # The message holds the text now: the deltas would be a second copy to rewrite.
            await MessageCopyRepository(session).drop_stream_events([run.reply_id])
            await runs.update(run.reply_id, reply_message_id=message_id, status="done")
            await session.commit()
        return PersistResult(reply_message_id=message_id, mentioned_agents=agents)

    @staticmethod
    async def _source_changed(session: AsyncSession, run: AgentRun) -> bool:
        """The message the reply answers was deleted, or edited since the reply began."""
        if (run.context or {}).get("withdrawn"):
            return True
        found = await MessageRepository(session).get(run.root_message_id or run.message_id)
        if found is None:
            return True
        source = found[0]
        edited = source.edited_at is not None and source.edited_at > run.created_at
        return source.deleted_at is not None or edited

    async def _persisted(self, session: AsyncSession, message_id: int) -> PersistResult:
        found = await MessageRepository(session).get(message_id)
        mentions = (found[0].meta or {}).get("mentions", []) if found else []
        agents = list(dict.fromkeys(m["id"] for m in mentions if m.get("kind") == "agent"))
        return PersistResult(reply_message_id=message_id, mentioned_agents=agents)

    @activity.defn(name="settle_agent_reply")
    async def settle_reply(self, ref: ReplyRef) -> SettleResult:
        """Charge what the reply used (capped by the reservation) and refund the rest, once."""
        async with self.sessionmaker() as session:
            runs = AgentRunRepository(session)
            run = await runs.get(ref.reply_id, for_update=True)
            if run is None or run.status != "done":
                return SettleResult(credits_charged=0)  # a failed run was released instead
            ledger = LedgerRepository(session)
            settled = await ledger.entry(SETTLE, run.reply_id)
            if settled is not None:
                return SettleResult(credits_charged=int((settled.meta or {}).get("charged", 0)))
            cost = credits_for(run.usage or {}, self.settings.reply_credits_per_1k_tokens)
            reserve = await ledger.entry(RESERVE, run.reply_id)
            reserved = -reserve.amount if reserve is not None else 0
            charged = min(cost, reserved) if reserve is not None else cost
            if run.requested_by is not None:
                await ledger.append(
                    run.requested_by,
                    reserved - charged,
                    "agent_reply",
                    SETTLE,
                    run.reply_id,
                    {"charged": charged, "cost": cost, "agent_id": run.agent_id},
                )
            run.usage = {**(run.usage or {}), "credits": charged}
            await runs.finish(
                run, "done", context=context_refs(run.context), keep_answer=run.is_team_part
            )
            await session.commit()
        return SettleResult(credits_charged=charged)

    @activity.defn(name="abort_agent_reply")
    async def abort_reply(self, request: AbortRequest) -> AbortResult:
        """Final failure or cancellation: release credits, tell the room, once."""
        async with self.sessionmaker() as session:
            run = await AgentRunRepository(session).get(request.reply_id, for_update=True)
            if run is None:
                return AbortResult(status="error")
            if run.reply_message_id is not None:
                return AbortResult(status="done", reply_message_id=run.reply_message_id)
            if run.status in ("error", "cancelled", "done"):
                return AbortResult(status=run.status)
            await self._fail(session, run, request.code)
            await session.commit()
            return AbortResult(status=run.status)

    async def _fail(self, session: AsyncSession, run: AgentRun, code: str) -> None:
        ledger = LedgerRepository(session)
        reserve = await ledger.entry(RESERVE, run.reply_id)
        settled = await ledger.entry(SETTLE, run.reply_id) is not None
        if reserve is not None and run.requested_by is not None and not settled:
            await ledger.append(
                run.requested_by,
                -reserve.amount,
                "release",
                RELEASE,
                run.reply_id,
                {"code": code},
            )
        message = ERROR_MESSAGES.get(code, ERROR_MESSAGES["failed"])
        events = EventRepository(session)
        failed: dict[str, object] = {
            "reply_id": run.reply_id,
            "agent_id": run.agent_id,
            "error": {"code": code, "message": message},
        }
        if run.team_id is not None:  # a client may never have seen this part's agent.start
            failed |= {"team_id": run.team_id, "part": run.is_team_part}
        await events.append(run.room_id, "agent.error", failed)
        await MessageCopyRepository(session).drop_stream_events([run.reply_id])
        status = "cancelled" if code == "cancelled" else "error"
        if status == "error" and not run.is_team_part:  # the team's answer names failed parts
            persona = get_registry().get(run.agent_id)
            name = persona.name if persona else run.agent_id
            notice = await AgentRunRepository(session).insert_system_message(
                run, f"{name} could not answer: {message}", "agent_error"
            )
            await events.append(
                run.room_id, "message.new", MessageOut.of(notice).model_dump(mode="json")
            )
        await AgentRunRepository(session).finish(
            run, status, error={"code": code, "message": message}, context=context_refs(run.context)
        )


class KnowledgeDbActivities:
    """Database-only steps of the knowledge workflows (local activities on the main queue)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    @activity.defn(name="mark_knowledge_failed")
    async def mark_document_failed(self, failure: IndexFailure) -> None:
        async with self.sessionmaker() as session:
            knowledge = KnowledgeRepository(session)
            document = await knowledge.get(failure.item_id, for_update=True)
            if document is not None and document.status in ("pending", "processing"):
                await knowledge.set_status(document.id, "failed", error=failure.reason)
            await session.commit()

    @activity.defn(name="mark_memory_failed")
    async def mark_memory_failed(self, failure: IndexFailure) -> None:
        async with self.sessionmaker() as session:
            memories = MemoryRepository(session)
            memory = await memories.get(failure.item_id, for_update=True)
            if memory is not None and memory.status == "pending":
                await memories.set_status(memory.id, "failed")
            await session.commit()
