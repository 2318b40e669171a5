"""AgentReply and RouteMessage inputs and results, and the reply API shapes.

Workflow and activity payloads carry IDs, agent ids, counts and scores only: message text,
retrieved chunks, memories and the assembled prompt stay in PostgreSQL (DESIGN rule 2).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

ReplyStatus = Literal["pending", "running", "done", "error", "cancelled"]
TERMINAL_STATUSES: frozenset[str] = frozenset({"done", "error", "cancelled"})


class AgentReplyInput(BaseModel):
    """The contract other features start AgentReply with; new fields must stay optional."""

    reply_id: str
    message_id: int
    room_id: str
    agent_id: str
    requested_by: str
    depth: int = 0
    # Agents that already answered in this hand-off chain, oldest first.
    chain: list[str] = Field(default_factory=list)
    parent_reply_id: str | None = None
    # The human message a hand-off chain started from (None: message_id is that message).
    root_message_id: int | None = None
    # Set when this answer is part of a team answer (TeamReply `team-{message_id}`): a part
    # (reply_id `team-{message_id}-{agent}`) stores no message; the synthesis (reply_id equal
    # to the team id) stores the one answer the room reads.
    team_id: str | None = None


class AgentReplyResult(BaseModel):
    reply_id: str
    status: ReplyStatus
    reply_message_id: int | None = None
    handed_off_to: str | None = None
    # Why a hand-off the reply asked for was not started: "max_depth" or "loop".
    handoff_blocked: str | None = None
    context_steps: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    credits_charged: int = 0
    error_code: str | None = None


class ReplyRef(BaseModel):
    reply_id: str
    # Storing the reply also queues the requester's e-mail notification (AgentReply only).
    notify: bool = False


class ContextSummary(BaseModel):
    """What the planner sees of the stored context: counts and scores, never text."""

    step: int
    history_messages: int
    history_tokens: int
    hits: int
    best_score: float
    memories: int
    can_refine: bool
    suggested_handoff: str | None = None


class BeginReply(BaseModel):
    """Everything AgentReply needs from settings, read once by an activity (deterministic)."""

    status: Literal["running", "done", "refused"]
    max_steps: int = 1
    max_handoff_depth: int = 3
    retrieval_min_score: float = 0.0
    stream_heartbeat_seconds: float = 10.0
    stream_max_attempts: int = 3
    # 0 in results recorded before the setting existed: those replies never start over.
    stream_worker_loss_restarts: int = 0
    retry_initial_seconds: float = 1.0
    retrieval_task_queue: str = ""
    # This worker serves retrieval itself: build context as a local activity (no queue hop).
    context_local: bool = False
    # Step 0 of the context, built in the same local activity where this worker serves
    # retrieval (begin_agent_reply_with_context); None: the workflow runs that step itself.
    first_context: ContextSummary | None = None
    reply_message_id: int | None = None
    error_code: str | None = None


class ContextRequest(BaseModel):
    reply_id: str
    step: int = 0


class PlanDecision(BaseModel):
    action: Literal["answer", "refine", "handoff"]
    target: str | None = None


class StreamRequest(BaseModel):
    reply_id: str
    # Set when the planner wants a brief answer that hands off to this agent.
    handoff_hint: str | None = None


class StreamResult(BaseModel):
    attempt: int
    deltas: int
    chars: int
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None = None
    already_persisted: bool = False


class SettleResult(BaseModel):
    credits_charged: int


class PersistResult(BaseModel):
    reply_message_id: int | None
    # Agent ids the stored reply mentions, in order (hand-off candidates).
    mentioned_agents: list[str] = Field(default_factory=list)
    # Storing also settles the credits and queues the notification, in the same local
    # activity; None / False (histories from before, or a refused notification): the
    # workflow runs settle_agent_reply / notify itself.
    settled: SettleResult | None = None
    notified: bool = False


class AbortRequest(BaseModel):
    reply_id: str
    code: str
    # A short, content-free reason (an exception type), shown to the room.
    reason: str = ""


class AbortResult(BaseModel):
    status: ReplyStatus
    reply_message_id: int | None = None


class StartReplies(BaseModel):
    """Start one AgentReply per agent for a message (RouteMessage, hand-offs)."""

    message_id: int
    room_id: str
    requested_by: str
    agent_ids: list[str]
    depth: int = 0
    chain: list[str] = Field(default_factory=list)
    parent_reply_id: str | None = None
    root_message_id: int | None = None


class StartedReplies(BaseModel):
    started: list[str] = Field(default_factory=list)
    already_started: list[str] = Field(default_factory=list)


class ClassifyRequest(BaseModel):
    message_id: int
    candidates: list[str] = Field(default_factory=list)


class ClassifyResult(BaseModel):
    agent_id: str | None


# --- HTTP ---------------------------------------------------------------------------------


class ReplyOut(BaseModel):
    reply_id: str
    message_id: int
    room_id: uuid.UUID
    agent_id: str
    # The team answer this reply belongs to (None for a reply of its own).
    team_id: str | None = None
    status: str
    reply_message_id: int | None
    depth: int
    parent_reply_id: str | None
    usage: dict[str, Any]
    error: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime


class CancelOut(BaseModel):
    reply_id: str
    status: Literal["cancelling"]


class AgentOut(BaseModel):
    """An agent's card in the directory, built from its persona."""

    id: str
    name: str
    description: str
    role: str
    # planning | design | engineering | quality | delivery | orchestration
    category: str
    # Other names `@` reaches it by (the seed's BMAD ids).
    aliases: list[str] = Field(default_factory=list)
    # The litellm model string the agent answers with (the persona's, or the default).
    model: str

    @classmethod
    def of(cls, persona: object, model: str) -> AgentOut:
        """`model`: the persona's model resolved against the default."""
        return cls.model_validate(persona, from_attributes=True).model_copy(update={"model": model})


class AgentCategoryOut(BaseModel):
    id: str
    # Agents in the category (whatever the query matched).
    count: int


class AgentList(BaseModel):
    items: list[AgentOut]
    categories: list[AgentCategoryOut] = Field(default_factory=list)
