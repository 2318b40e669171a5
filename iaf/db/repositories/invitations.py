"""Invitations: created pending, closed once (accepted, revoked or expired), found by token hash."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.models import Invitation, Room, User

MailKind = Literal["invite", "reminder", "resend"]


@dataclass
class InvitationView:
    """An invitation with what its landing page and e-mail show."""

    invitation: Invitation
    room_name: str
    room_archived: bool
    inviter_name: str


class InvitationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(
        self,
        room_id: uuid.UUID,
        invited_by: uuid.UUID,
        email: str,
        token_hash: str,
        token_salt: str,
        expires_at: datetime,
    ) -> Invitation | None:
        """None when this address already has a pending invitation to the room."""
        statement = (
            pg_insert(Invitation)
            .values(
                id=uuid.uuid4(),
                room_id=room_id,
                invited_by=invited_by,
                email=email,
                token_hash=token_hash,
                token_salt=token_salt,
                status="pending",
                expires_at=expires_at,
                resends_requested=0,
                resends_sent=0,
            )
            .on_conflict_do_nothing(
                index_elements=[Invitation.room_id, func.lower(Invitation.email)],
                # A literal, not a bound parameter: a generic plan must still infer the index.
                index_where=text("status = 'pending'"),
            )
            .returning(Invitation)
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def pending_for(self, room_id: uuid.UUID, email: str) -> Invitation | None:
        return await self.session.scalar(
            select(Invitation).where(
                Invitation.room_id == room_id,
                func.lower(Invitation.email) == email.lower(),
                Invitation.status == "pending",
            )
        )

    async def get(self, invitation_id: uuid.UUID) -> Invitation | None:
        return await self.session.get(Invitation, invitation_id, populate_existing=True)

    async def in_room(self, room_id: uuid.UUID, invitation_id: uuid.UUID) -> Invitation | None:
        return await self.session.scalar(
            select(Invitation).where(Invitation.id == invitation_id, Invitation.room_id == room_id)
        )

    async def list_for_room(self, room_id: uuid.UUID, limit: int = 200) -> list[Invitation]:
        rows = await self.session.scalars(
            select(Invitation)
            .where(Invitation.room_id == room_id)
            .order_by(Invitation.created_at.desc())
            .limit(limit)
        )
        return list(rows)

    async def view(
        self, *, token_hash: str | None = None, invitation_id: uuid.UUID | None = None
    ) -> InvitationView | None:
        """One indexed lookup (by token hash or id) that also brings the room and inviter names."""
        query = (
            select(Invitation, Room.name, Room.archived_at, User.name)
            .join(Room, Room.id == Invitation.room_id)
            .join(User, User.id == Invitation.invited_by)
        )
        if token_hash is not None:
            query = query.where(Invitation.token_hash == token_hash)
        else:
            query = query.where(Invitation.id == invitation_id)
        row = (await self.session.execute(query.execution_options(populate_existing=True))).first()
        if row is None:
            return None
        return InvitationView(row[0], str(row[1]), row[2] is not None, str(row[3]))

    async def _close(self, invitation_id: uuid.UUID, status: str, **values: object) -> bool:
        """pending → status, at most once; the salt goes, so the link can never be rebuilt."""
        result = await self.session.execute(
            update(Invitation)
            .where(Invitation.id == invitation_id, Invitation.status == "pending")
            .values(status=status, closed_at=func.now(), token_salt=None, **values)
            .returning(Invitation.id)
        )
        return result.first() is not None

    async def accept(self, invitation_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        """Only a pending invitation whose expiry has not passed, even if its timer is late."""
        result = await self.session.execute(
            update(Invitation)
            .where(
                Invitation.id == invitation_id,
                Invitation.status == "pending",
                Invitation.expires_at > func.now(),
            )
            .values(
                status="accepted", closed_at=func.now(), token_salt=None, accepted_user_id=user_id
            )
            .returning(Invitation.id)
        )
        return result.first() is not None

    async def revoke(self, invitation_id: uuid.UUID) -> bool:
        return await self._close(invitation_id, "revoked")

    async def expire(self, invitation_id: uuid.UUID) -> bool:
        return await self._close(invitation_id, "expired")

    async def request_resend(self, invitation_id: uuid.UUID) -> int | None:
        """The new resend sequence number, or None when the invitation is no longer pending."""
        result = await self.session.execute(
            update(Invitation)
            .where(Invitation.id == invitation_id, Invitation.status == "pending")
            .values(resends_requested=Invitation.resends_requested + 1)
            .returning(Invitation.resends_requested)
        )
        value = result.scalar_one_or_none()
        return None if value is None else int(value)

    async def mark_sent(self, invitation_id: uuid.UUID, kind: MailKind, seq: int) -> None:
        values: dict[str, object]
        if kind == "invite":
            values = {"invite_sent_at": func.coalesce(Invitation.invite_sent_at, func.now())}
        elif kind == "reminder":
            values = {"reminder_sent_at": func.coalesce(Invitation.reminder_sent_at, func.now())}
        else:
            values = {"resends_sent": func.greatest(Invitation.resends_sent, seq)}
        await self.session.execute(
            update(Invitation).where(Invitation.id == invitation_id).values(**values)
        )

    async def delete(self, invitation_id: uuid.UUID) -> None:
        invitation = await self.session.get(Invitation, invitation_id)
        if invitation is not None:
            await self.session.delete(invitation)
