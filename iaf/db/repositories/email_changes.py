"""E-mail changes waiting for the mailed link: one pending per person, looked up by hash."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.models import EmailChange


class EmailChangeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(
        self, user_id: uuid.UUID, new_email: str, token_hash: str, salt: str, valid_for: timedelta
    ) -> EmailChange:
        """A new pending change; the person's earlier pending one no longer confirms."""
        await self.close_pending(user_id, "superseded")
        change = EmailChange(
            user_id=user_id,
            new_email=new_email,
            token_hash=token_hash,
            token_salt=salt,
            status="pending",
            expires_at=datetime.now(UTC) + valid_for,
        )
        self.session.add(change)
        await self.session.flush()
        return change

    async def close_pending(self, user_id: uuid.UUID, status: str) -> None:
        await self.session.execute(
            update(EmailChange)
            .where(EmailChange.user_id == user_id, EmailChange.status == "pending")
            .values(status=status, token_salt=None, closed_at=datetime.now(UTC))
        )

    async def pending_for(self, user_id: uuid.UUID) -> EmailChange | None:
        return await self.session.scalar(
            select(EmailChange).where(
                EmailChange.user_id == user_id,
                EmailChange.status == "pending",
                EmailChange.expires_at > datetime.now(UTC),
            )
        )

    async def by_token_hash(self, token_hash: str) -> EmailChange | None:
        return await self.session.scalar(
            select(EmailChange).where(EmailChange.token_hash == token_hash).with_for_update()
        )

    async def get(self, change_id: uuid.UUID) -> EmailChange | None:
        return await self.session.get(EmailChange, change_id)

    async def confirm(self, change: EmailChange) -> None:
        change.status = "confirmed"
        change.token_salt = None
        change.closed_at = datetime.now(UTC)

    async def mark_sent(self, change_id: uuid.UUID) -> None:
        await self.session.execute(
            update(EmailChange)
            .where(EmailChange.id == change_id, EmailChange.mail_sent_at.is_(None))
            .values(mail_sent_at=datetime.now(UTC))
        )
