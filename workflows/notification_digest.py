"""NotificationDigest (`digest-{user_id}`): one e-mail at most every N minutes for a person
who missed things while offline.

Started or woken by signal-with-start when a notification is queued. It waits a moment (so
that what happens together is sent together), then until N minutes after the last digest
(measured on the workflow's clock, recorded with each digest), sends one digest of whatever is
still worth telling, and loops while notifications are waiting; with none left it ends. The
rows are the truth: a signal only wakes it, and one that arrives as it ends starts a new run.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.mail import MailActivities
    from activities.notifications import NotificationActivities
    from schemas.notifications import (
        DigestCheck,
        DigestDue,
        DigestInput,
        DigestResult,
        DigestSend,
    )
    from workflows.retry_policies import DB_RETRY, MAIL_RETRY


@workflow.defn
class NotificationDigest:
    def __init__(self) -> None:
        self.woken = False

    @workflow.signal
    def queued(self) -> None:
        self.woken = True

    @workflow.run
    async def run(self, input: DigestInput) -> DigestResult:
        result = DigestResult()
        window = timedelta(minutes=input.window_minutes)
        while True:
            self.woken = False
            workflow.set_current_details(f"digest for user {input.user_id}: gathering")
            await workflow.sleep(timedelta(seconds=input.delay_seconds))
            due: DigestDue = await workflow.execute_local_activity_method(
                NotificationActivities.digest_due,
                DigestCheck(user_id=input.user_id),
                start_to_close_timeout=timedelta(seconds=15),
                retry_policy=DB_RETRY,
            )
            if due.pending == 0 and not self.woken:
                workflow.set_current_details(f"digest for user {input.user_id}: nothing waiting")
                return result
            if due.pending == 0:
                continue
            if due.last_sent_at is not None:
                wait = due.last_sent_at + window - workflow.now()
                if wait > timedelta(0):
                    workflow.set_current_details(
                        f"digest for user {input.user_id}: {due.pending} waiting until"
                        f" {due.last_sent_at + window:%H:%M:%S} UTC (one per {window})"
                    )
                    await workflow.sleep(wait)
            workflow.set_current_details(f"digest for user {input.user_id}: sending")
            sent = await workflow.execute_activity_method(
                MailActivities.send_digest,
                DigestSend(user_id=input.user_id, sent_at=workflow.now()),
                start_to_close_timeout=timedelta(minutes=1),
                schedule_to_close_timeout=timedelta(days=1),
                retry_policy=MAIL_RETRY,
            )
            if sent.sent:
                result.digests_sent += 1
                result.items_sent += sent.items
            if workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(input)
