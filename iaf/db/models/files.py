"""Files attached to messages: the row here, the bytes in the file store (iaf/files/store.py)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from iaf.db.models.base import Base, created_at_column, uuid_pk


class Attachment(Base):
    """Uploaded to a room, then posted with one message. The bytes live under `storage_key`
    (users/{uploader}/{id}); a row whose room, message or uploader is gone, or whose status is
    `deleting`, is removed with its bytes by the worker's file janitor."""

    __tablename__ = "attachments"
    __table_args__ = (
        Index("ix_attachments_message_id", "message_id"),
        Index("ix_attachments_uploader_id_created_at", "uploader_id", "created_at"),
        Index("ix_attachments_room_id", "room_id"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("orgs.id", ondelete="CASCADE")
    )
    # SET NULL, not CASCADE: the janitor must see the row to delete its bytes.
    room_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("rooms.id", ondelete="SET NULL")
    )
    uploader_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="SET NULL")
    )
    message_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("messages.id", ondelete="SET NULL")
    )
    name: Mapped[str] = mapped_column(String(255))
    # Judged from the bytes, never from the name or the client's Content-Type.
    content_type: Mapped[str] = mapped_column(String(100))
    # image | pdf | text
    kind: Mapped[str] = mapped_column(String(20))
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(300))
    # uploading | stored | deleting
    status: Mapped[str] = mapped_column(String(20), server_default="uploading")
    knowledge_document_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("knowledge_documents.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = created_at_column()
    posted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
