"""What `/v1/chat/completions` does before it relays the reply: find the agent, check the
messages, store the turn in the conversation's private room, and start the agent's reply.

The conversation is stored as the messages of a private room (see
`iaf.db.models.openai_sessions`); the reply is the same AgentReply workflow a room mention
starts, with IDs only. Choices a client may notice:
- The model is an agent id; the agent's persona stays the system prompt. The client's
  system (or developer) messages are stored as the caller's messages, so the agent reads
  them as instructions from the person it talks to.
- Replies through this API never hand off to another agent (an OpenAI model is one
  agent): they start at the maximum hand-off depth.
- The room (kind "api", the caller its only member) is listed with the caller's rooms, so
  API conversations can be read in the web client; GDPR export and erasure cover it as any
  private room.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from iaf.agents.registry import AgentPersona, get_registry
from iaf.db.models import User
from iaf.db.repositories.messages import MessageRepository
from iaf.db.repositories.openai_sessions import OpenAISessionRepository, conversation_digests
from iaf.db.repositories.room_events import EventRepository
from iaf.db.repositories.rooms import RoomRepository
from iaf.errors import ApiError
from iaf.settings import Settings
from iaf.workflow_calls import reply_workflow_id, start_agent_reply
from schemas.agents import AgentReplyInput
from schemas.chat import MessageOut
from schemas.openai import ChatMessageIn

log = logging.getLogger(__name__)

ROOM_KIND = "api"


def persona_for(model: str) -> AgentPersona:
    persona = get_registry().get(model.strip().lower())
    if persona is None:
        raise ApiError(
            404,
            "model_not_found",
            f"The model `{model}` does not exist (models are agent ids; see GET /v1/models)",
        )
    return persona


def check_messages(messages: list[ChatMessageIn], settings: Settings) -> None:
    for i, message in enumerate(messages):
        size = len(message.content.encode())
        if size > settings.message_max_bytes:
            raise ApiError(
                413,
                "content_too_large",
                f"messages.{i}.content is {size} bytes; the limit is {settings.message_max_bytes}",
            )
    if not messages[-1].content.strip():
        raise ApiError(400, "empty_content", "the last user message must not be empty")


@dataclass(frozen=True)
class StoredTurn:
    """What one request stored: the room, its triggering message, where its events start."""

    conversation_id: uuid.UUID
    room_id: uuid.UUID
    trigger_id: int
    reply_id: str
    since_event_id: int
    tip: str
    user_id: uuid.UUID
    agent_id: str


async def store_turn(
    session: AsyncSession, user: User, persona: AgentPersona, messages: list[ChatMessageIn]
) -> StoredTurn:
    """Store the request's new messages, in a room that already holds the rest of the
    conversation when there is one, else in a new private room; one transaction."""
    turns = [(m.normalised_role, m.content) for m in messages]
    digests = conversation_digests(user.id, persona.id, turns)
    conversations = OpenAISessionRepository(session)
    found = await conversations.longest_continuation(user.id, persona.id, digests[:-1])
    held = 0
    if found is not None and await conversations.claim(
        found[0].id, digests[found[1] - 1], digests[-1]
    ):
        conversation, held = found
    else:
        room = await RoomRepository(session).create(
            user.org_id, user.id, f"API · {persona.name}", ROOM_KIND, "", False, owner_only=True
        )
        conversation = await conversations.create(user.id, persona.id, room.id, digests[-1])
    trigger_id, since = await _insert_messages(
        session, user, persona, conversation.room_id, messages[held:]
    )
    reply_id = reply_workflow_id(trigger_id, persona.id)
    await conversations.record_reply(conversation.id, reply_id)
    await session.commit()
    return StoredTurn(
        conversation.id,
        conversation.room_id,
        trigger_id,
        reply_id,
        since,
        digests[-1],
        user.id,
        persona.id,
    )


async def _insert_messages(
    session: AsyncSession,
    user: User,
    persona: AgentPersona,
    room_id: uuid.UUID,
    messages: list[ChatMessageIn],
) -> tuple[int, int]:
    """Insert as room messages (never routed: the reply is started here); returns the last
    message id and the id of the last event written."""
    repository, events = MessageRepository(session), EventRepository(session)
    last_id = last_event = 0
    for message in messages:
        by_agent = message.normalised_role == "assistant"
        meta = {"openai_role": message.normalised_role}
        stored, _ = await repository.insert(
            room_id,
            None if by_agent else user.id,
            message.content,
            sender_agent_id=persona.id if by_agent else None,
            type_="agent" if by_agent else "text",
            meta=meta,
            routed=True,
        )
        out = MessageOut.of(stored, None if by_agent else user.name)
        last_event = await events.append(room_id, "message.new", out.model_dump(mode="json"))
        last_id = stored.id
    return last_id, last_event


async def start_reply(client: Client, settings: Settings, turn: StoredTurn) -> None:
    """The messages are stored either way; without Temporal there is no reply to wait for."""
    reply = AgentReplyInput(
        reply_id=turn.reply_id,
        message_id=turn.trigger_id,
        room_id=str(turn.room_id),
        agent_id=turn.agent_id,
        requested_by=str(turn.user_id),
        depth=settings.agent_max_handoff_depth,
    )
    try:
        await start_agent_reply(client, settings, reply)
    except Exception as exc:
        log.warning("AgentReply %s not started (%s)", turn.reply_id, type(exc).__name__)
        raise ApiError(
            503, "temporal_unavailable", "the agent service is unavailable; retry later"
        ) from None
