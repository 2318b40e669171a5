"""Agent runs (one row per reply id) and the reply message each run stores exactly once."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.models import AgentRun, Message
from schemas.agents import TERMINAL_STATUSES, AgentReplyInput

# FOR SHARE: a claim in flight makes this wait and look again, so no stale delta lands
# after the new attempt's agent.reset.
_INSERT_OWNED_EVENT = text(
    "INSERT INTO room_events (room_id, type, data)"
    " SELECT :room_id, :type, CAST(:data AS jsonb) FROM agent_runs"
    " WHERE reply_id = :reply_id AND stream_attempt = :attempt FOR SHARE RETURNING id"
)


_START_RUNNING = text(
    "WITH started AS (UPDATE agent_runs SET status = 'running', updated_at = now()"
    " WHERE reply_id = :reply_id AND status = 'pending' RETURNING room_id)"
    " INSERT INTO room_events (room_id, type, data)"
    " SELECT room_id, 'agent.start', CAST(:data AS jsonb) FROM started"
)


class AgentRunRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(self, input: AgentReplyInput, status: str = "pending") -> bool:
        """Insert the run if it is new (True); a second start of the same reply id is a no-op."""
        result = await self.session.execute(
            pg_insert(AgentRun)
            .values(
                reply_id=input.reply_id,
                message_id=input.message_id,
                room_id=uuid.UUID(input.room_id),
                agent_id=input.agent_id,
                requested_by=uuid.UUID(input.requested_by),
                status=status,
                depth=input.depth,
                parent_reply_id=input.parent_reply_id,
                root_message_id=input.root_message_id,
                team_id=input.team_id,
                usage={},
            )
            .on_conflict_do_nothing(index_elements=["reply_id"])
            .returning(AgentRun.reply_id)
        )
        return result.first() is not None

    async def create_locked(self, input: AgentReplyInput) -> AgentRun:
        """The run, inserted if new, locked for this transaction: one statement."""
        statement = pg_insert(AgentRun).values(
            reply_id=input.reply_id,
            message_id=input.message_id,
            room_id=uuid.UUID(input.room_id),
            agent_id=input.agent_id,
            requested_by=uuid.UUID(input.requested_by),
            status="pending",
            depth=input.depth,
            parent_reply_id=input.parent_reply_id,
            root_message_id=input.root_message_id,
            team_id=input.team_id,
            usage={},
        )
        # A no-op update of the existing row takes its lock and lets RETURNING show it.
        statement = statement.on_conflict_do_update(
            index_elements=["reply_id"], set_={"reply_id": statement.excluded.reply_id}
        )
        run = await self.session.scalar(
            statement.returning(AgentRun).execution_options(populate_existing=True)
        )
        assert run is not None
        return run

    async def start_running(self, reply_id: str, start_event: dict[str, Any]) -> None:
        """pending -> running, with its agent.start event, once."""
        await self.session.execute(
            _START_RUNNING, {"reply_id": reply_id, "data": json.dumps(start_event)}
        )

    async def get(self, reply_id: str, *, for_update: bool = False) -> AgentRun | None:
        query = select(AgentRun).where(AgentRun.reply_id == reply_id)
        if for_update:
            query = query.with_for_update()
        return await self.session.scalar(query.execution_options(populate_existing=True))

    async def in_room(self, reply_id: str, room_id: uuid.UUID) -> AgentRun | None:
        return await self.session.scalar(
            select(AgentRun).where(AgentRun.reply_id == reply_id, AgentRun.room_id == room_id)
        )

    async def update(self, reply_id: str, **values: Any) -> None:
        await self.session.execute(
            update(AgentRun)
            .where(AgentRun.reply_id == reply_id)
            .values(**values, updated_at=func.now())
        )

    async def claim_stream(self, reply_id: str) -> AgentRun | None:
        """Take the stream over: `stream_attempt` goes up by one and the returned run carries
        it; writes made under an earlier number are refused from now on. None when the run is
        not running unanswered."""
        result = await self.session.scalars(
            update(AgentRun)
            .where(
                AgentRun.reply_id == reply_id,
                AgentRun.status == "running",
                AgentRun.reply_message_id.is_(None),
            )
            .values(
                stream_attempt=func.coalesce(AgentRun.stream_attempt, 0) + 1,
                updated_at=func.now(),
            )
            .returning(AgentRun)
            .execution_options(populate_existing=True)
        )
        return result.first()

    async def append_stream_event(
        self, reply_id: str, attempt: int, room_id: uuid.UUID, type_: str, data: dict[str, Any]
    ) -> bool:
        """A streaming event, written only while `attempt` owns the stream."""
        result = await self.session.execute(
            _INSERT_OWNED_EVENT,
            {
                "reply_id": reply_id,
                "attempt": attempt,
                "room_id": room_id,
                "type": type_,
                "data": json.dumps(data, separators=(",", ":")),
            },
        )
        return result.first() is not None

    async def store_answer(
        self, reply_id: str, attempt: int, answer: str, usage: dict[str, Any]
    ) -> bool:
        result = await self.session.execute(
            update(AgentRun)
            .where(AgentRun.reply_id == reply_id, AgentRun.stream_attempt == attempt)
            .values(answer=answer, usage=usage, updated_at=func.now())
            .returning(AgentRun.reply_id)
        )
        return result.first() is not None

    async def finish(
        self,
        run: AgentRun,
        status: str,
        *,
        error: dict[str, Any] | None = None,
        context: dict[str, Any] | None = None,
        keep_answer: bool = False,
    ) -> None:
        """Terminal status; the stored context keeps references only (no text) from here on.
        A team part keeps its answer until the team's synthesis has read it (`clear_drafts`)."""
        assert status in TERMINAL_STATUSES
        run.status = status
        run.error = error
        if not keep_answer:
            run.answer = None
        run.context = context
        run.updated_at = datetime.now(UTC)
        await self.session.flush()

    async def insert_reply_message(
        self,
        run: AgentRun,
        content: str,
        meta: dict[str, Any],
    ) -> Message:
        """The reply as a room message, keyed by reply id (unique index): stored at most once."""
        statement = (
            pg_insert(Message)
            .values(
                room_id=run.room_id,
                sender_user_id=None,
                sender_agent_id=run.agent_id,
                content=content,
                type="agent",
                reply_to_id=run.message_id,
                meta={**meta, "reply_id": run.reply_id},
                routed_at=func.now(),
            )
            .on_conflict_do_nothing(
                index_elements=[text("(metadata ->> 'reply_id')")],
                index_where=text("metadata ? 'reply_id'"),
            )
            .returning(Message)
        )
        created = (await self.session.execute(statement)).scalar_one_or_none()
        if created is not None:
            return created
        existing = await self.session.scalar(
            select(Message).where(Message.meta["reply_id"].astext == run.reply_id)
        )
        assert existing is not None
        return existing

    async def insert_system_message(self, run: AgentRun, content: str, kind: str) -> Message:
        message = Message(
            room_id=run.room_id,
            sender_user_id=None,
            sender_agent_id=None,
            content=content,
            type="system",
            reply_to_id=run.message_id,
            meta={"about_reply_id": run.reply_id, "kind": kind},
            routed_at=func.now(),
        )
        self.session.add(message)
        await self.session.flush()
        await self.session.refresh(message)
        return message

    async def team_runs(self, team_id: str) -> list[AgentRun]:
        """A team answer's runs (its parts and its synthesis), oldest first."""
        rows = await self.session.scalars(
            select(AgentRun)
            .where(AgentRun.team_id == team_id)
            .order_by(AgentRun.created_at, AgentRun.reply_id)
            .execution_options(populate_existing=True)
        )
        return list(rows)

    async def clear_drafts(self, team_id: str) -> None:
        """The parts' answers, once the synthesis is written (or the team gave up)."""
        await self.session.execute(
            update(AgentRun)
            .where(
                AgentRun.team_id == team_id,
                AgentRun.reply_id != team_id,
                AgentRun.answer.is_not(None),
            )
            .values(answer=None, updated_at=func.now())
        )
