"""Password reset links: one pending per person, single-use, expiring; the salt goes on close."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.models import PasswordReset


class PasswordResetRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(
        self, user_id: uuid.UUID, token_hash: str, salt: str, valid_for: timedelta
    ) -> PasswordReset:
        """A new link supersedes the person's pending ones: only the latest mail works."""
        await self.close_pending(user_id, "superseded")
        reset = PasswordReset(
            user_id=user_id,
            token_hash=token_hash,
            token_salt=salt,
            status="pending",
            expires_at=datetime.now(UTC) + valid_for,
        )
        self.session.add(reset)
        await self.session.flush()
        return reset

    async def get(self, reset_id: uuid.UUID) -> PasswordReset | None:
        return await self.session.get(PasswordReset, reset_id)

    async def by_token_hash_for_update(self, token_hash: str) -> PasswordReset | None:
        return await self.session.scalar(
            select(PasswordReset).where(PasswordReset.token_hash == token_hash).with_for_update()
        )

    async def close_pending(self, user_id: uuid.UUID, status: str) -> None:
        await self.session.execute(
            update(PasswordReset)
            .where(PasswordReset.user_id == user_id, PasswordReset.status == "pending")
            .values(status=status, closed_at=func.now(), token_salt=None)
        )

    async def close(self, reset: PasswordReset, status: str) -> None:
        reset.status = status
        reset.closed_at = datetime.now(UTC)
        reset.token_salt = None
        await self.session.flush()

    async def expire(self, reset_id: uuid.UUID) -> bool:
        """Pending past its expiry becomes expired; True when this call did it."""
        result = await self.session.execute(
            update(PasswordReset)
            .where(
                PasswordReset.id == reset_id,
                PasswordReset.status == "pending",
                PasswordReset.expires_at <= func.now(),
            )
            .values(status="expired", closed_at=func.now(), token_salt=None)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def mark_sent(self, reset_id: uuid.UUID) -> None:
        await self.session.execute(
            update(PasswordReset)
            .where(PasswordReset.id == reset_id)
            .values(mail_sent_at=func.now())
        )
