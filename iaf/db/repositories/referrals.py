"""Referrals: pending until the referred user's first action or the deadline, decided once."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.models import Referral, User


def month_bounds(moment: datetime) -> tuple[datetime, datetime]:
    """The calendar month (in the moment's time zone, UTC here) that contains the moment."""
    start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start, end


class ReferralRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(
        self,
        referrer_id: uuid.UUID,
        referred_user_id: uuid.UUID,
        invitation_id: uuid.UUID | None,
        reward_credits: int,
        deadline_at: datetime,
    ) -> Referral:
        referral = Referral(
            referrer_id=referrer_id,
            referred_user_id=referred_user_id,
            invitation_id=invitation_id,
            reward_credits=reward_credits,
            status="pending",
            deadline_at=deadline_at,
        )
        self.session.add(referral)
        await self.session.flush()
        return referral

    async def get(self, referral_id: uuid.UUID, *, for_update: bool = False) -> Referral | None:
        query = select(Referral).where(Referral.id == referral_id)
        if for_update:
            query = query.with_for_update()
        return await self.session.scalar(query.execution_options(populate_existing=True))

    async def for_invitation(self, invitation_id: uuid.UUID) -> Referral | None:
        return await self.session.scalar(
            select(Referral).where(Referral.invitation_id == invitation_id)
        )

    async def note_first_action(self, user_id: uuid.UUID) -> uuid.UUID | None:
        """Record the referred user's first action, once; the referral id when this was it.

        One probe of the unique index on referred_user_id: cheap enough for every posted message.
        """
        result = await self.session.execute(
            update(Referral)
            .where(
                Referral.referred_user_id == user_id,
                Referral.status == "pending",
                Referral.first_action_at.is_(None),
                Referral.deadline_at > func.now(),
            )
            .values(first_action_at=func.now())
            .returning(Referral.id)
        )
        return result.scalar_one_or_none()

    async def expire_unless_acted(self, referral_id: uuid.UUID) -> bool:
        """pending → expired unless a first action is on record (then the grant must happen)."""
        result = await self.session.execute(
            update(Referral)
            .where(
                Referral.id == referral_id,
                Referral.status == "pending",
                Referral.first_action_at.is_(None),
            )
            .values(status="expired", decided_at=func.now())
            .returning(Referral.id)
        )
        return result.first() is not None

    async def decide(self, referral_id: uuid.UUID, status: str) -> None:
        await self.session.execute(
            update(Referral)
            .where(Referral.id == referral_id, Referral.status == "pending")
            .values(status=status, decided_at=func.now())
        )

    async def lock_referrer(self, referrer_id: uuid.UUID) -> None:
        """Serialises grants per referrer: two concurrent grants cannot both slip under the cap."""
        await self.session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 43))"),
            {"key": f"referrer:{referrer_id}"},
        )

    async def granted_between(self, referrer_id: uuid.UUID, start: datetime, end: datetime) -> int:
        count = await self.session.scalar(
            select(func.count())
            .select_from(Referral)
            .where(
                Referral.referrer_id == referrer_id,
                Referral.status == "granted",
                Referral.decided_at >= start,
                Referral.decided_at < end,
            )
        )
        return int(count or 0)

    async def list_for_referrer(
        self, referrer_id: uuid.UUID, limit: int = 200
    ) -> list[tuple[Referral, str | None]]:
        rows = await self.session.execute(
            select(Referral, User.name)
            .outerjoin(User, User.id == Referral.referred_user_id)
            .where(Referral.referrer_id == referrer_id)
            .order_by(Referral.created_at.desc())
            .limit(limit)
        )
        return [(r[0], r[1]) for r in rows.all()]
