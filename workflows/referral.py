"""Referral: wait for the referred user's first action until the deadline, then grant once.

The API records first_action_at in the message's transaction and then signals (with start)
this workflow. A lost signal loses nothing: while waiting, the workflow re-reads the row every
`referral_recheck_minutes`, and at the deadline the expiry only applies to a row without a
first action on record. The grant itself is idempotent (ledger source "referral", id).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.invitations import InvitationActivities
    from activities.ledger import LedgerActivities
    from schemas.invitations import ReferralInput, ReferralOutcome, ReferralRef, ReferralState

DB_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=30)
)


@workflow.defn
class Referral:
    def __init__(self) -> None:
        self._acted = False

    @workflow.signal
    def first_action(self) -> None:
        self._acted = True

    @workflow.run
    async def run(self, input: ReferralInput) -> ReferralOutcome:
        ref = ReferralRef(referral_id=input.referral_id)
        while True:
            state = await self._load(ref)
            workflow.set_current_details(
                f"referral {input.referral_id}: {state.status}; waiting for the invited user's"
                f" first action until {state.deadline_at:%Y-%m-%d %H:%M} UTC"
            )
            if state.status != "pending":
                return ReferralOutcome(referral_id=input.referral_id, status=state.status)
            self._acted = self._acted or state.acted
            if not self._acted:
                await self._wait_for_action(ref, state)
            if not self._acted:
                outcome = await workflow.execute_activity_method(
                    InvitationActivities.expire_referral,
                    ref,
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=DB_RETRY,
                )
                if outcome.status != "pending":
                    return outcome
            outcome = await workflow.execute_activity_method(
                LedgerActivities.grant_referral,
                ref,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=DB_RETRY,
            )
            if outcome.status != "pending":
                return outcome
            self._acted = False  # a signal with no first action on record: keep waiting

    async def _load(self, ref: ReferralRef) -> ReferralState:
        return await workflow.execute_local_activity_method(
            InvitationActivities.load_referral,
            ref,
            start_to_close_timeout=timedelta(seconds=15),
            retry_policy=DB_RETRY,
        )

    async def _wait_for_action(self, ref: ReferralRef, state: ReferralState) -> None:
        """Returns once a first action is known (signal or row) or the deadline has passed."""
        recheck = timedelta(seconds=max(state.recheck_seconds, 1.0))
        while not self._acted:
            remaining = state.deadline_at - workflow.now()
            if remaining <= timedelta(0):
                return
            try:
                await workflow.wait_condition(lambda: self._acted, timeout=min(remaining, recheck))
            except TimeoutError:
                fresh = await self._load(ref)
                if fresh.status != "pending":
                    return
                self._acted = fresh.acted
