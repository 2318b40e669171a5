"""Room invitations by e-mail and the referrals they create."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, String, func, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from iaf.db.models.base import Base, created_at_column, uuid_pk


class Invitation(Base):
    """The raw token is never stored: only its SHA-256 (lookup) and the salt it is derived from."""

    __tablename__ = "invitations"

    id: Mapped[uuid.UUID] = uuid_pk()
    room_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("rooms.id", ondelete="CASCADE"), index=True
    )
    invited_by: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(320))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # Cleared when the invitation closes, so its link can never be rebuilt afterwards.
    token_salt: Mapped[str | None] = mapped_column(String(64))
    # pending | accepted | revoked | expired
    status: Mapped[str] = mapped_column(String(20), default="pending")
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    accepted_user_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    invite_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reminder_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resends_requested: Mapped[int] = mapped_column(Integer, default=0)
    resends_sent: Mapped[int] = mapped_column(Integer, default=0)

    @property
    def current_status(self) -> str:
        """A pending invitation past its expiry is expired, even before its timer has fired."""
        if self.status == "pending" and self.expires_at <= datetime.now(UTC):
            return "expired"
        return self.status


# Inviting the same address to the same room again finds this one pending invitation.
Index(
    "uq_invitations_pending_room_email",
    Invitation.room_id,
    func.lower(Invitation.email),
    unique=True,
    postgresql_where=text("status = 'pending'"),
)


class Referral(Base):
    """One per referred user; granted at most once (ledger source "referral", id = this id)."""

    __tablename__ = "referrals"
    __table_args__ = (CheckConstraint("referrer_id <> referred_user_id", name="not_self"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    referrer_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    referred_user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), unique=True
    )
    invitation_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("invitations.id", ondelete="SET NULL")
    )
    reward_credits: Mapped[int] = mapped_column(Integer)
    # pending | granted | expired | capped
    status: Mapped[str] = mapped_column(String(20), default="pending")
    deadline_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    first_action_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()
