"""Database activities of the Invitation and Referral workflows (and starting a Referral).

They take and return IDs, statuses and times; addresses and names stay in Postgres.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import Client

from iaf.db.models import Invitation
from iaf.db.repositories.invitations import InvitationRepository
from iaf.db.repositories.referrals import ReferralRepository
from iaf.db.repositories.room_events import EventRepository
from iaf.settings import Settings
from iaf.workflow_calls import start_referral
from schemas.invitations import (
    CloseRequest,
    InvitationClosed,
    InvitationRef,
    InvitationSchedule,
    ReferralOutcome,
    ReferralRef,
    ReferralState,
)


def reminder_time(invitation: Invitation, remind_before: timedelta) -> datetime:
    """remind_before ahead of expiry, or at half-life when the invitation is shorter than that."""
    lifetime = invitation.expires_at - invitation.created_at
    return invitation.expires_at - min(remind_before, lifetime / 2)


class InvitationActivities:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], temporal: Client, settings: Settings
    ) -> None:
        self.sessionmaker = sessionmaker
        self.temporal = temporal
        self.settings = settings

    @activity.defn(name="load_invitation_schedule")
    async def load_invitation_schedule(self, ref: InvitationRef) -> InvitationSchedule:
        async with self.sessionmaker() as session:
            invitation = await InvitationRepository(session).get(ref.invitation_id)
        if invitation is None:
            now = datetime.now(UTC)
            return InvitationSchedule(status="gone", expires_at=now, reminder_at=now)
        remind_before = timedelta(minutes=self.settings.invitation_reminder_before_minutes)
        return InvitationSchedule(
            status=invitation.status,
            expires_at=invitation.expires_at,
            reminder_at=reminder_time(invitation, remind_before),
        )

    @activity.defn(name="close_invitation")
    async def close_invitation(self, request: CloseRequest) -> InvitationClosed:
        """The row decides: expire it if the timer fired and it is still pending, then report.

        The expiry and its notice to the inviter commit together, so a retry sends no second one.
        """
        async with self.sessionmaker() as session:
            invitations = InvitationRepository(session)
            invitation = await invitations.get(request.invitation_id)
            if invitation is None:
                return InvitationClosed(status="gone")
            if request.expire and await invitations.expire(invitation.id):
                await EventRepository(session).append(
                    invitation.room_id,
                    "invitation.expired",
                    {
                        "invitation_id": str(invitation.id),
                        "room_id": str(invitation.room_id),
                        "invited_by": str(invitation.invited_by),
                    },
                )
                await session.commit()
                invitation = await invitations.get(request.invitation_id)
                assert invitation is not None
            referral = None
            if invitation.status == "accepted":
                referral = await ReferralRepository(session).for_invitation(invitation.id)
        return InvitationClosed(
            status=invitation.status,
            referral_id=referral.id if referral else None,
        )

    @activity.defn(name="start_referral")
    async def start_referral(self, ref: ReferralRef) -> bool:
        """Idempotent: a Referral already started (e.g. by the first action) is left alone."""
        async with self.sessionmaker() as session:
            referral = await ReferralRepository(session).get(ref.referral_id)
        if referral is None:
            return False
        return await start_referral(
            self.temporal, self.settings, referral.id, referral.referred_user_id
        )

    @activity.defn(name="load_referral")
    async def load_referral(self, ref: ReferralRef) -> ReferralState:
        async with self.sessionmaker() as session:
            referral = await ReferralRepository(session).get(ref.referral_id)
        recheck = self.settings.referral_recheck_minutes * 60
        if referral is None:
            return ReferralState(
                status="gone", deadline_at=datetime.now(UTC), acted=False, recheck_seconds=recheck
            )
        return ReferralState(
            status=referral.status,
            deadline_at=referral.deadline_at,
            acted=referral.first_action_at is not None,
            recheck_seconds=recheck,
        )

    @activity.defn(name="expire_referral")
    async def expire_referral(self, ref: ReferralRef) -> ReferralOutcome:
        """Expired unless a first action is on record; "pending" then means: grant it now."""
        async with self.sessionmaker() as session:
            referrals = ReferralRepository(session)
            await referrals.expire_unless_acted(ref.referral_id)
            await session.commit()
            referral = await referrals.get(ref.referral_id)
        status = referral.status if referral else "gone"
        return ReferralOutcome(referral_id=ref.referral_id, status=status)
