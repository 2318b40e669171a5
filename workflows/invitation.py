"""Invitation: mail the link, remind once, then wait for accept/revoke or the expiry timer.

The invitation row is the truth (the API closes it in the same transaction that adds the
member); signals only wake this workflow up, and it re-reads the row before finishing. The
expiry is a durable timer: when it fires on a still-pending row, the row becomes expired and
the inviter gets an `invitation.expired` room event. An accepted invitation that created a
new account hands over to the Referral workflow.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.invitations import InvitationActivities
    from activities.mail import MailActivities
    from schemas.invitations import (
        CloseRequest,
        InvitationClosed,
        InvitationInput,
        InvitationMail,
        InvitationRef,
        InvitationResult,
        InvitationSchedule,
        MailKind,
        ReferralRef,
        ResendRequest,
    )
    from schemas.notifications import NotifyRequest
    from workflows.notify_step import notify
    from workflows.retry_policies import DB_RETRY, MAIL_RETRY


@workflow.defn
class Invitation:
    def __init__(self) -> None:
        self._woken_to_close = False
        self._resends: list[int] = []
        self._invite_sent = False
        self._reminded = False
        self._reminders_sent = 0

    @workflow.signal
    def accepted(self) -> None:
        self._woken_to_close = True

    @workflow.signal
    def revoked(self) -> None:
        self._woken_to_close = True

    @workflow.signal
    def resend(self, request: ResendRequest) -> None:
        self._resends.append(request.seq)

    @workflow.run
    async def run(self, input: InvitationInput) -> InvitationResult:
        ref = InvitationRef(invitation_id=input.invitation_id)
        schedule = await workflow.execute_local_activity_method(
            InvitationActivities.load_invitation_schedule,
            ref,
            start_to_close_timeout=timedelta(seconds=15),
            retry_policy=DB_RETRY,
        )
        workflow.set_current_details(
            f"invitation {input.invitation_id}: {schedule.status}, expires"
            f" {schedule.expires_at:%Y-%m-%d %H:%M} UTC (step: sending the invitation mail)"
        )
        if schedule.status == "pending":
            self._invite_sent = await self._mail(
                input.invitation_id, "invite", 0, schedule.expires_at
            )
        closed = await self._wait_until_closed(input.invitation_id, schedule)
        if closed.status == "accepted" and workflow.patched("notify-inviter"):
            await notify(
                NotifyRequest(kind="invitation_accepted", invitation_id=input.invitation_id)
            )
        if closed.referral_id is not None:
            await workflow.execute_activity_method(
                InvitationActivities.start_referral,
                ReferralRef(referral_id=closed.referral_id),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=DB_RETRY,
            )
        return InvitationResult(
            invitation_id=input.invitation_id,
            status=closed.status,
            invite_sent=self._invite_sent,
            reminders_sent=self._reminders_sent,
            referral_id=closed.referral_id,
        )

    async def _wait_until_closed(
        self, invitation_id: uuid.UUID, schedule: InvitationSchedule
    ) -> InvitationClosed:
        while True:
            if schedule.status == "pending":
                await self._wait(invitation_id, schedule)
            expire = workflow.now() >= schedule.expires_at
            closed = await workflow.execute_activity_method(
                InvitationActivities.close_invitation,
                CloseRequest(invitation_id=invitation_id, expire=expire),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=DB_RETRY,
            )
            if closed.status != "pending":
                return closed
            self._woken_to_close = False  # a signal the row does not confirm: keep waiting

    async def _wait(self, invitation_id: uuid.UUID, schedule: InvitationSchedule) -> None:
        """Until a close signal or the expiry; sends the reminder and any resends on the way."""
        workflow.set_current_details(
            f"invitation {invitation_id}: waiting for accept or revoke until"
            f" {schedule.expires_at:%Y-%m-%d %H:%M} UTC; invite sent: {self._invite_sent},"
            f" reminders sent: {self._reminders_sent}"
        )
        while not self._woken_to_close:
            now = workflow.now()
            if now >= schedule.expires_at:
                return
            if self._resends:
                seq = max(self._resends)
                self._resends.clear()
                await self._mail(invitation_id, "resend", seq, schedule.expires_at)
                continue
            remind = self._invite_sent and not self._reminded
            if remind and now >= schedule.reminder_at:
                self._reminded = True
                if await self._mail(invitation_id, "reminder", 0, schedule.expires_at):
                    self._reminders_sent += 1
                continue
            wake = schedule.reminder_at if remind else schedule.expires_at
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._woken_to_close or bool(self._resends), timeout=wake - now
                )

    async def _mail(
        self, invitation_id: uuid.UUID, kind: MailKind, seq: int, expires_at: datetime
    ) -> bool:
        """True when the mail is out. Gives up at the expiry, or as soon as a close signal comes."""
        remaining = expires_at - workflow.now()
        if remaining <= timedelta(0):
            return False
        handle = workflow.start_activity_method(
            MailActivities.send_invitation_mail,
            InvitationMail(invitation_id=invitation_id, kind=kind, seq=seq),
            start_to_close_timeout=timedelta(seconds=60),
            schedule_to_close_timeout=remaining,
            retry_policy=MAIL_RETRY,
        )
        await workflow.wait_condition(lambda: handle.done() or self._woken_to_close)
        abandoned = not handle.done()
        if abandoned:
            handle.cancel()
        try:
            outcome = await handle
        except ActivityError:
            workflow.logger.warning("invitation %s: %s mail not sent", invitation_id, kind)
            return False
        except asyncio.CancelledError:
            if not abandoned:
                raise
            return False
        if outcome.reason in ("not_pending", "gone"):
            # Closed without a signal reaching us (Temporal was away): let the row confirm it.
            self._woken_to_close = True
        return outcome.sent or outcome.reason == "already_sent"
