"""Database activities of the PasswordReset workflow: ids, statuses and times only."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from iaf.db.repositories.password_resets import PasswordResetRepository
from schemas.auth import PasswordResetInput, PasswordResetSchedule


class AccountActivities:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    @activity.defn(name="load_password_reset")
    async def load_password_reset(self, input: PasswordResetInput) -> PasswordResetSchedule:
        async with self.sessionmaker() as session:
            reset = await PasswordResetRepository(session).get(input.reset_id)
        if reset is None:
            return PasswordResetSchedule(status="gone", expires_at=datetime.now(UTC))
        return PasswordResetSchedule(status=reset.status, expires_at=reset.expires_at)

    @activity.defn(name="expire_password_reset")
    async def expire_password_reset(self, input: PasswordResetInput) -> str:
        """The timer fired: a link still pending expires (its salt erased); returns the status."""
        async with self.sessionmaker() as session:
            resets = PasswordResetRepository(session)
            await resets.expire(input.reset_id)
            await session.commit()
            reset = await resets.get(input.reset_id)
        return "gone" if reset is None else reset.status
