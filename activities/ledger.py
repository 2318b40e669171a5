"""Ledger activities: the referral grant, booked exactly once.

The referral row (locked) and the ledger entry keyed ("referral", referral id) commit in one
transaction. The entry does not name the referred person: the referral row does, and it is
deleted with them, so erasing a referred person leaves nothing of them in the referrer's
ledger. A retry after a crash finds the referral decided, or the entry already booked
(append returns False), so the referrer is credited once whatever is retried.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from iaf.db.repositories.ledger import REFERRAL_SOURCE, LedgerRepository
from iaf.db.repositories.referrals import ReferralRepository, month_bounds
from iaf.settings import Settings
from schemas.invitations import ReferralOutcome, ReferralRef


class LedgerActivities:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings

    @activity.defn(name="grant_referral")
    async def grant_referral(self, ref: ReferralRef) -> ReferralOutcome:
        """granted, or capped past the monthly cap; pending means no first action on record."""
        async with self.sessionmaker() as session:
            referrals = ReferralRepository(session)
            referral = await referrals.get(ref.referral_id, for_update=True)
            if referral is None:
                return ReferralOutcome(referral_id=ref.referral_id, status="gone")
            if referral.status != "pending" or referral.first_action_at is None:
                return ReferralOutcome(referral_id=referral.id, status=referral.status)
            await referrals.lock_referrer(referral.referrer_id)
            now: datetime = await session.scalar(select(func.now())) or datetime.now(UTC)
            start, end = month_bounds(now)
            if (
                await referrals.granted_between(referral.referrer_id, start, end)
                >= self.settings.referral_monthly_cap
            ):
                status = "capped"
            else:
                status = "granted"
                await LedgerRepository(session).append(
                    referral.referrer_id,
                    referral.reward_credits,
                    "referral",
                    REFERRAL_SOURCE,
                    str(referral.id),
                    # Not whom: the referral row says that, and goes with that person.
                    {},
                )
            await referrals.decide(referral.id, status)
            await session.commit()
        return ReferralOutcome(referral_id=ref.referral_id, status=status)
