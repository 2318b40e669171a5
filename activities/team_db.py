"""TeamReply's own database steps (local activities), and its start from RouteMessage.

Each part and the synthesis is an agent_runs row driven by AgentReply's activities (credits
reserved and settled per run, one agent.start/done/error each). What is the team's alone:
announcing the panel (`team.start`), handing the parts' answers to the synthesis as its
context, and closing (`team.done`, the parts' drafts cleared). Every step is keyed by the team
id and idempotent, so a retry sends no second event.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import Client

from iaf.agents.registry import AgentRegistry, get_registry
from iaf.db.models import AgentRun
from iaf.db.repositories.agents import AgentRunRepository
from iaf.db.repositories.messages import MessageRepository
from iaf.db.repositories.room_events import EventRepository
from iaf.settings import Settings
from iaf.workflow_calls import (
    start_team_reply,
    team_part_id,
    team_synthesizer,
    team_workflow_id,
)
from schemas.agents import AgentReplyInput
from schemas.team import GatheredAnswers, StartTeam, TeamClose, TeamRef, TeamReplyInput


def run_inputs(input: TeamReplyInput) -> tuple[list[AgentReplyInput], AgentReplyInput]:
    """The parts' runs and the synthesis run of a team answer."""
    common = {
        "message_id": input.message_id,
        "room_id": input.room_id,
        "requested_by": input.requested_by,
        "team_id": input.team_id,
    }
    parts = [
        AgentReplyInput(
            reply_id=team_part_id(input.message_id, agent_id), agent_id=agent_id, **common
        )
        for agent_id in input.agent_ids
    ]
    synthesis = AgentReplyInput(reply_id=input.team_id, agent_id=input.synthesizer_id, **common)
    return parts, synthesis


class TeamDbActivities:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        temporal: Client,
        settings: Settings,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.temporal = temporal
        self.settings = settings

    @activity.defn(name="start_team_reply")
    async def start_team(self, request: StartTeam) -> bool:
        """Start the message's TeamReply eagerly with the worker's client (False: it exists)."""
        return await start_team_reply(
            self.temporal,
            self.settings,
            TeamReplyInput(
                team_id=team_workflow_id(request.message_id),
                message_id=request.message_id,
                room_id=request.room_id,
                requested_by=request.requested_by,
                agent_ids=request.agent_ids,
                synthesizer_id=team_synthesizer(self.settings, request.agent_ids),
            ),
        )

    @activity.defn(name="begin_team_reply")
    async def begin_team(self, input: TeamReplyInput) -> None:
        """Record every run as pending and announce the panel to the room, once."""
        parts, synthesis = run_inputs(input)
        async with self.sessionmaker() as session:
            runs = AgentRunRepository(session)
            announced = not await runs.create(synthesis)
            for part in parts:
                await runs.create(part)
            if not announced:
                await EventRepository(session).append(
                    uuid.UUID(input.room_id),
                    "team.start",
                    {
                        "team_id": input.team_id,
                        "message_id": input.message_id,
                        "agent_ids": input.agent_ids,
                        "synthesizer_id": input.synthesizer_id,
                        "part_ids": [p.reply_id for p in parts],
                    },
                )
            await session.commit()

    @activity.defn(name="gather_team_answers")
    async def gather_answers(self, ref: TeamRef) -> GatheredAnswers:
        """The synthesis's context: the question and every part's answer (or its absence)."""
        registry = get_registry()
        async with self.sessionmaker() as session:
            runs = AgentRunRepository(session)
            synthesis = await runs.get(ref.team_id, for_update=True)
            if synthesis is None or synthesis.status != "running":
                return GatheredAnswers(answered=0)
            parts = [r for r in await runs.team_runs(ref.team_id) if r.is_team_part]
            found = await MessageRepository(session).get(synthesis.message_id)
            question = found[0].content if found and found[0].deleted_at is None else ""
            answers, missing = _answers(parts, registry)
            synthesis.context = {
                "question": {
                    "message_id": synthesis.message_id,
                    "text": question,
                    "handed_over_by": None,
                },
                "history": [],
                "sources": [],
                "memories": [],
                "steps": [],
                "handoff_hint": None,
                "team": {
                    "agents": [p.agent_id for p in parts],
                    "answered": [a["agent_id"] for a in answers],
                    "answers": answers,
                    "missing": missing,
                },
            }
            await session.commit()
        return GatheredAnswers(answered=len(answers), missing=missing)

    @activity.defn(name="close_team_reply")
    async def close_team(self, close: TeamClose) -> None:
        """The parts' drafts go; the room hears how the team ended, once."""
        async with self.sessionmaker() as session:
            runs = AgentRunRepository(session)
            synthesis = await runs.get(close.team_id, for_update=True)
            if synthesis is None:
                return
            await runs.clear_drafts(close.team_id)
            events = EventRepository(session)
            if not await events.exists(synthesis.room_id, "team.done", "team_id", close.team_id):
                await events.append(
                    synthesis.room_id,
                    "team.done",
                    {
                        "team_id": close.team_id,
                        "status": close.status,
                        "message_id": close.reply_message_id,
                        "parts": {p.agent_id: p.status for p in close.parts},
                    },
                )
            await session.commit()


def _answers(
    parts: list[AgentRun], registry: AgentRegistry
) -> tuple[list[dict[str, str]], list[str]]:
    answers: list[dict[str, str]] = []
    missing: list[str] = []
    for part in parts:
        persona = registry.get(part.agent_id)
        name = persona.name if persona else part.agent_id
        if part.status == "done" and (part.answer or "").strip():
            answers.append({"agent_id": part.agent_id, "name": name, "text": part.answer or ""})
        else:
            missing.append(name)
    return answers, missing
