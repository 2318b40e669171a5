"""Agent replies (one row per reply id), knowledge documents and user memories.

PostgreSQL is the source of truth and holds every text: Qdrant holds vectors and identifiers,
and retrieval keeps only hits whose document or memory row is `ready` here, so a deleted row
stops being used at once, before its points are gone.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from iaf.db.models.base import Base, created_at_column, uuid_pk
from iaf.db.models.chat import Message


class AgentRun(Base):
    """The durable state of one AgentReply; the workflow carries only its id."""

    __tablename__ = "agent_runs"
    __table_args__ = (
        Index("ix_agent_runs_room_id_created_at", "room_id", "created_at"),
        Index("ix_agent_runs_requested_by", "requested_by"),
    )

    reply_id: Mapped[str] = mapped_column(String(120), primary_key=True)
    message_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    room_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("rooms.id", ondelete="CASCADE")
    )
    agent_id: Mapped[str] = mapped_column(String(64))
    requested_by: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="SET NULL")
    )
    # pending | running | done | error | cancelled
    status: Mapped[str] = mapped_column(String(20), server_default="pending")
    reply_message_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("messages.id", ondelete="SET NULL"), index=True
    )
    usage: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    depth: Mapped[int] = mapped_column(Integer, server_default="0")
    parent_reply_id: Mapped[str | None] = mapped_column(String(120))
    root_message_id: Mapped[int | None] = mapped_column(BigInteger)
    # {code, message} of the final failure or cancellation.
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # The assembled context (history, sources, memories) while the reply runs; reduced to
    # references (ids and scores, no text) once it is finished.
    context: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # The streamed answer between the streaming step and the persist step.
    answer: Mapped[str | None] = mapped_column(Text)
    # The streaming attempt that owns the reply's deltas and answer: an earlier attempt that
    # Temporal gave up on (a missed heartbeat) but that still runs can write neither.
    stream_attempt: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()


# A reply is stored at most once, whatever is retried (messages.metadata->>'reply_id').
Index(
    "uq_messages_reply_id",
    Message.meta["reply_id"].astext,
    unique=True,
    postgresql_where=text("metadata ? 'reply_id'"),
)


class KnowledgeDocument(Base):
    __tablename__ = "knowledge_documents"
    __table_args__ = (
        CheckConstraint(
            "(scope = 'org' AND room_id IS NULL) OR (scope = 'room' AND room_id IS NOT NULL)",
            name="scope_room",
        ),
        Index("ix_knowledge_documents_org_id_created_at", "org_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("orgs.id", ondelete="CASCADE")
    )
    room_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("rooms.id", ondelete="CASCADE"), index=True
    )
    owner_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    # org | room
    scope: Mapped[str] = mapped_column(String(10))
    title: Mapped[str] = mapped_column(String(200))
    content: Mapped[str] = mapped_column(Text)
    size_bytes: Mapped[int] = mapped_column(Integer, server_default="0")
    # pending | processing | ready | failed | deleting
    status: Mapped[str] = mapped_column(String(20), server_default="pending")
    chunk_count: Mapped[int] = mapped_column(Integer, server_default="0")
    # Ingestion progress: chunks embedded and stored so far, of chunks_total.
    chunks_done: Mapped[int] = mapped_column(Integer, server_default="0")
    chunks_total: Mapped[int] = mapped_column(Integer, server_default="0")
    embedding_model: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()
    indexed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class KnowledgeChunk(Base):
    """The text of one chunk of a document, as retrieval returns it to an agent."""

    __tablename__ = "knowledge_chunks"

    document_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True),
        ForeignKey("knowledge_documents.id", ondelete="CASCADE"),
        primary_key=True,
    )
    chunk: Mapped[int] = mapped_column(Integer, primary_key=True)
    content: Mapped[str] = mapped_column(Text)


class Memory(Base):
    """Something a user asked agents to remember about them; read only for their own requests."""

    __tablename__ = "memories"
    __table_args__ = (Index("ix_memories_user_id_created_at", "user_id", "created_at"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE")
    )
    org_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("orgs.id", ondelete="CASCADE")
    )
    content: Mapped[str] = mapped_column(Text)
    # pending | ready | failed | deleting
    status: Mapped[str] = mapped_column(String(20), server_default="pending")
    created_at: Mapped[datetime] = created_at_column()
    indexed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
