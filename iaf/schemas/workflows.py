"""Workflow and activity inputs and results. IDs only: no text, names or e-mails (rule 2)."""

from __future__ import annotations

from pydantic import BaseModel


class RouteMessageInput(BaseModel):
    message_id: int


class RouteMessageResult(BaseModel):
    message_id: int
    agent_ids: list[str] = []
    mentioned_user_ids: list[str] = []


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


class SweepResult(BaseModel):
    started: int
    already_started: int
