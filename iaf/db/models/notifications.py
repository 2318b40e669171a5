"""Who is online (SSE leases), what to tell a person who was not, and the digests sent.

A person is online while some API process holds an unexpired lease for them: each process
renews `user_presence.online_until` for every person with an SSE stream open there, and
deletes its lease when their last stream there closes. Notifications are queued only for
people with no live lease, and go out as one e-mail digest at most every N minutes.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from iaf.db.models.base import Base, created_at_column


class UserPresence(Base):
    __tablename__ = "user_presence"

    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    # The API process holding the lease (random per process start).
    process_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    online_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class NotificationSetting(Base):
    """A person's e-mail choice: digests on (the default) or off (settings, unsubscribe link)."""

    __tablename__ = "notification_settings"

    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    email_digest: Mapped[bool] = mapped_column(Boolean, server_default=true())
    # settings | unsubscribe_link
    changed_by: Mapped[str] = mapped_column(String(30))
    updated_at: Mapped[datetime] = created_at_column()


class NotificationDigest(Base):
    """One e-mail: its items point here; `sent_at` (the workflow's clock) once SMTP took it."""

    __tablename__ = "notification_digests"
    __table_args__ = (Index("ix_notification_digests_user_id_sent_at", "user_id", "sent_at"),)

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE")
    )
    item_count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = created_at_column()
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Notification(Base):
    """Something that happened while the person was offline: ids only, no text."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("user_id", "source_key"),
        Index(
            "ix_notifications_pending",
            "user_id",
            postgresql_where=text("digest_id IS NULL AND dropped_reason IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE")
    )
    # mention | reply | invitation_accepted
    kind: Mapped[str] = mapped_column(String(30))
    # mention:{message_id}, reply:{reply_id}, invitation:{invitation_id}: queued once per person.
    source_key: Mapped[str] = mapped_column(String(160))
    room_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("rooms.id", ondelete="CASCADE"), index=True
    )
    message_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    actor_agent_id: Mapped[str | None] = mapped_column(String(64))
    digest_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("notification_digests.id", ondelete="CASCADE"), index=True
    )
    # Not sent, and why: read (seen in the app since), muted, unsubscribed, gone.
    dropped_reason: Mapped[str | None] = mapped_column(String(30))
    created_at: Mapped[datetime] = created_at_column()
