"""Each person's own event log: what their room list must show (rooms joined or left, role
changes, renamed rooms, mentions). Written by triggers from room_events (migration 0008)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from iaf.db.models.base import Base, created_at_column


class UserEvent(Base):
    __tablename__ = "user_events"
    __table_args__ = (
        Index(
            "ix_user_events_user_id_id", "user_id", "id", postgresql_where=text("id IS NOT NULL")
        ),
    )

    # Insertion order; `id` is the delivery order, drawn when the writing transaction commits
    # (under one lock), so a stream resuming after id N never skips a late commit.
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE")
    )
    type: Mapped[str] = mapped_column(String(40))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    created_at: Mapped[datetime] = created_at_column()
