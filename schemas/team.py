"""TeamReply (several agents answer together) inputs and results: ids, agent ids, statuses."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

PartStatus = Literal["done", "error", "cancelled"]


class TeamReplyInput(BaseModel):
    """`team_id` is `team-{message_id}`; the parts are `team-{message_id}-{agent}`."""

    team_id: str
    message_id: int
    room_id: str
    requested_by: str
    # The panel, in the order the message named them (or the default panel for `@team`).
    agent_ids: list[str]
    # Who writes the one answer from the panel's answers.
    synthesizer_id: str


class PartOutcome(BaseModel):
    agent_id: str
    status: PartStatus
    error_code: str | None = None
    credits_charged: int = 0


class TeamReplyResult(BaseModel):
    team_id: str
    status: Literal["running", "done", "error", "cancelled"]
    reply_message_id: int | None = None
    parts: list[PartOutcome] = Field(default_factory=list)
    credits_charged: int = 0
    error_code: str | None = None


class TeamRef(BaseModel):
    team_id: str


class GatheredAnswers(BaseModel):
    """How many parts the synthesis has to work from (their text stays in PostgreSQL)."""

    answered: int
    missing: list[str] = Field(default_factory=list)


class TeamClose(BaseModel):
    team_id: str
    status: Literal["done", "error", "cancelled"]
    reply_message_id: int | None = None
    parts: list[PartOutcome] = Field(default_factory=list)


class StartTeam(BaseModel):
    """RouteMessage's request to start a message's TeamReply."""

    message_id: int
    room_id: str
    requested_by: str
    agent_ids: list[str]
