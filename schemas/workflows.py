"""Workflow and activity inputs and results. IDs only: no text, names or e-mails (rule 2)."""

from __future__ import annotations

from pydantic import BaseModel


class RouteMessageInput(BaseModel):
    message_id: int


class RouteMessageResult(BaseModel):
    message_id: int
    agent_ids: list[str] = []
    mentioned_user_ids: list[str] = []
    # How the agents were chosen: "mention", "keywords", "classifier" (None: no agent).
    routed_by: str | None = None
    reply_ids: list[str] = []


class MessageRef(BaseModel):
    message_id: int


class RecordedMentions(BaseModel):
    message_id: int
    room_id: str
    agent_ids: list[str]
    user_ids: list[str]
    mentions_all: bool
    # False when the message was deleted before routing: nothing more to do.
    routable: bool = True
    # Who pays for agent replies (None for messages no person sent).
    sender_user_id: str | None = None
    # Intent routing, filled when the room auto-routes and no agent was mentioned.
    auto_route: bool = False
    intent_agent_id: str | None = None
    intent_ambiguous: bool = False
    intent_candidates: list[str] = []
    # The agents that answer together (`@team`, or several mentions with "together"):
    # one TeamReply instead of one AgentReply each.
    team_agent_ids: list[str] = []


class AttemptFailed(BaseModel):
    """An activity attempt failed and will be retried: what the workflow's details show.

    `error_type` is the exception's class name (or an ApplicationError's type), never its text.
    """

    activity_type: str
    attempt: int
    error_type: str
