"""Conversations held through the OpenAI-compatible API, one room each.

OpenAI clients are stateless: every request carries the whole conversation. Each
conversation is stored once, as the messages of a private room (kind "api") whose only
member is the caller, so that AgentReply reads its context from the room as it does for any
other room. `tip_hash` is a keyed digest of the conversation as the room holds it: a follow-up
request whose messages start with that conversation appends only its new messages, instead of
storing the whole history again. The row holds no text; it goes with its user and its room.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from iaf.db.models.base import Base, created_at_column, uuid_pk


class OpenAISession(Base):
    __tablename__ = "openai_sessions"
    __table_args__ = (
        Index("ix_openai_sessions_user_id_agent_id_tip_hash", "user_id", "agent_id", "tip_hash"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE")
    )
    agent_id: Mapped[str] = mapped_column(String(64))
    room_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("rooms.id", ondelete="CASCADE"), unique=True
    )
    # While a reply runs: the digest up to the triggering message (no follow-up matches it).
    # Once it is done: the digest including the stored reply.
    tip_hash: Mapped[str] = mapped_column(String(64))
    last_reply_id: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()
