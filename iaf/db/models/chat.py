"""Rooms, their members, messages and the per-room event log clients stream."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Computed,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR, UUID
from sqlalchemy.orm import Mapped, mapped_column

from iaf.db.models.base import Base, created_at_column, uuid_pk

# French and English stems of a message, accents dropped, and its room as a lexeme (the
# function is migration 0011_message_search's). Generated, so it always follows the text:
# edits, deletes, erasure.
MESSAGE_SEARCH_VECTOR = "public.iaf_search_vector(content, room_id)"


class Room(Base):
    __tablename__ = "rooms"

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("orgs.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    # direct | group | project
    kind: Mapped[str] = mapped_column(String(20), default="group")
    topic: Mapped[str] = mapped_column(Text, default="")
    auto_route: Mapped[bool] = mapped_column(Boolean, default=False)
    # A room for its owner and agents only (a /v1 conversation, a direct room created with
    # no one else): nobody joins it, so agents there may use the owner's memories.
    owner_only: Mapped[bool] = mapped_column(Boolean, server_default=text("false"), default=False)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="SET NULL")
    )
    archived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()

    @property
    def archived(self) -> bool:
        return self.archived_at is not None


class RoomMember(Base):
    __tablename__ = "room_members"

    room_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    # owner | admin | member
    role: Mapped[str] = mapped_column(String(20), default="member")
    last_read_message_id: Mapped[int | None] = mapped_column(BigInteger)
    # Muted: the room's mentions neither badge nor notify this member (no `mention` user event,
    # no e-mail); its messages still count as unread.
    is_muted: Mapped[bool] = mapped_column(Boolean, server_default=false(), default=False)
    joined_at: Mapped[datetime] = created_at_column()


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("room_id", "sender_user_id", "client_msg_id"),
        Index("ix_messages_room_id_id", "room_id", "id"),
        Index(
            "ix_messages_unrouted",
            "id",
            postgresql_where="routed_at IS NULL",
        ),
        Index("ix_messages_search_vector", "search_vector", postgresql_using="gin"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    room_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("rooms.id", ondelete="CASCADE")
    )
    sender_user_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    sender_agent_id: Mapped[str | None] = mapped_column(String(64))
    content: Mapped[str] = mapped_column(Text)
    # text | agent | system
    type: Mapped[str] = mapped_column(String(20), default="text")
    reply_to_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("messages.id", ondelete="SET NULL")
    )
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, default=dict)
    client_msg_id: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = created_at_column()
    edited_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set once RouteMessage has taken the message (or at insert when it needs no routing).
    routed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Never loaded with the row: only the search query reads it.
    search_vector: Mapped[str | None] = mapped_column(
        TSVECTOR, Computed(MESSAGE_SEARCH_VECTOR, persisted=True), deferred=True
    )


class RoomEvent(Base):
    """Append-only; ids are assigned under a per-room lock so id order is commit order."""

    __tablename__ = "room_events"
    __table_args__ = (Index("ix_room_events_room_id_id", "room_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    room_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("rooms.id", ondelete="CASCADE")
    )
    type: Mapped[str] = mapped_column(String(40))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = created_at_column()


class MessageReadReceipt(Base):
    """When a member of a direct room read each message of the other person (direct rooms
    only: in a group, who read what when is the room's read markers' business, not everyone's)."""

    __tablename__ = "message_read_receipts"
    __table_args__ = (
        Index("ix_message_read_receipts_room_id_message_id", "room_id", "message_id"),
    )

    message_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    room_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("rooms.id", ondelete="CASCADE")
    )
    read_at: Mapped[datetime] = created_at_column()


# A finished reply's stream events are deleted (its message holds the text), and a withdrawn
# reply's at once: found by reply id without scanning the room's whole log.
Index(
    "ix_room_events_stream_reply_id",
    RoomEvent.data["reply_id"].astext,
    postgresql_where=text("type IN ('agent.delta', 'agent.reset')"),
)


class RoomVectorRemoval(Base):
    """A deleted room whose knowledge vectors are still to be removed (RemoveVectors).

    Written in the room deletion's transaction, deleted once the points are gone, so a
    worker that finds one left over (Temporal was away) starts the removal again."""

    __tablename__ = "room_vector_removals"

    room_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    org_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = created_at_column()
