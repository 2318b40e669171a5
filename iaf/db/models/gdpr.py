"""GDPR: data-subject requests and their steps, download links, consents, erasure audit."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Identity,
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

OPEN_STATUSES = ("pending", "in_grace", "in_progress", "error")


class DataSubjectRequest(Base):
    """One export or erasure; the row outlives the account, keeping only the pseudonym."""

    __tablename__ = "data_subject_requests"
    __table_args__ = (
        # A second open request of the same kind for the same subject returns the first.
        Index(
            "uq_data_subject_requests_open",
            "kind",
            "subject_user_id",
            unique=True,
            postgresql_where=text("status IN ('pending', 'in_grace', 'in_progress', 'error')"),
        ),
        Index("ix_data_subject_requests_org_id_created_at", "org_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    # export | erasure
    kind: Mapped[str] = mapped_column(String(20))
    subject_user_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    # iaf.security.pseudonym of the subject: survives erasure, matches the SubjectRef attribute.
    subject_ref: Mapped[str] = mapped_column(String(64), index=True)
    org_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    # self | compliance
    requested_via: Mapped[str] = mapped_column(String(20))
    requested_by: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    requested_by_ref: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="")
    # pending | in_grace | in_progress | complete | error | cancelled
    status: Mapped[str] = mapped_column(String(20), default="pending")
    failed_step: Mapped[str | None] = mapped_column(String(40))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    grace_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Export: the archive's file name under data_dir/exports and when it stops being served.
    archive_name: Mapped[str | None] = mapped_column(String(200))
    archive_bytes: Mapped[int | None] = mapped_column(BigInteger)
    archive_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    archive_deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Erasure: verification scan result (locations and counts, never the values searched).
    verification: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class DataSubjectRequestStep(Base):
    """Each step's status and attempts, counted across workflow runs (a retry resumes here)."""

    __tablename__ = "data_subject_request_steps"

    request_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True),
        ForeignKey("data_subject_requests.id", ondelete="CASCADE"),
        primary_key=True,
    )
    step: Mapped[str] = mapped_column(String(40), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    # pending | running | done | error | skipped
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ExportDownloadToken(Base):
    """Single-purpose download links: only the SHA-256 of the random token is stored."""

    __tablename__ = "export_download_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True),
        ForeignKey("data_subject_requests.id", ondelete="CASCADE"),
        index=True,
    )
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Consent(Base):
    __tablename__ = "consents"

    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    purpose: Mapped[str] = mapped_column(String(40), primary_key=True)
    granted: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = created_at_column()


class ConsentChange(Base):
    """Every change is kept (proof of consent, Art. 7(1)) until the account is erased."""

    __tablename__ = "consent_history"
    __table_args__ = (Index("ix_consent_history_user_id_id", "user_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE")
    )
    purpose: Mapped[str] = mapped_column(String(40))
    granted: Mapped[bool] = mapped_column(Boolean)
    changed_at: Mapped[datetime] = created_at_column()


class ErasureAudit(Base):
    """PII-free proof that an erasure ran: kept audit_retention_days, then purged."""

    __tablename__ = "erasure_audit"

    request_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    subject_ref: Mapped[str] = mapped_column(String(64), index=True)
    org_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    requested_via: Mapped[str] = mapped_column(String(20))
    requested_by_ref: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    verification: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    receipt: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    receipt_signature: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = created_at_column()
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    retain_until: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class ErasureTarget(Base):
    """What the scrub and the verification scan look for; deleted when the receipt is signed.

    Kept in PostgreSQL (never in Temporal) because steps after the account deletion still
    need the e-mail, name and id to search for.
    """

    __tablename__ = "erasure_targets"

    request_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True),
        ForeignKey("data_subject_requests.id", ondelete="CASCADE"),
        primary_key=True,
    )
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    org_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200))
    handle: Mapped[str] = mapped_column(String(64))
    account_created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Rooms the subject was in, captured before memberships disappear with the account.
    room_ids: Mapped[list[str]] = mapped_column(JSONB, default=list)
    # Hashes of the subject's messages as word runs (iaf.privacy.fingerprints), never the
    # text: what the redaction and the scan look for in agent replies and quotes.
    text_fingerprints: Mapped[list[str]] = mapped_column(
        JSONB, server_default=text("'[]'::jsonb"), default=list
    )
    # Rooms where the subject's full name may be replaced on its own (iaf.privacy.names):
    # rooms of their organisation where nobody else bears the name; decided at capture.
    name_room_ids: Mapped[list[str]] = mapped_column(
        JSONB, server_default=text("'[]'::jsonb"), default=list
    )
    created_at: Mapped[datetime] = created_at_column()


# Deleting messages (a private room at erasure, any room deletion) sets reply_to_id NULL in
# the messages that replied to them: without this index, one scan of messages per deleted row.
Index(
    "ix_messages_reply_to_id",
    Message.reply_to_id,
    postgresql_where=text("reply_to_id IS NOT NULL"),
)
