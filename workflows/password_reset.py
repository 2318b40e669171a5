"""PasswordReset: mail the link, then hold its durable expiry (`password_reset_minutes`).

The row is the truth: the API closes it when the link is used, and at the timer this
workflow expires it if still pending, which also erases the salt the link was derived
from. The mail is retried with backoff while the SMTP server refuses, until the expiry.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.accounts import AccountActivities
    from activities.mail import MailActivities
    from schemas.auth import PasswordResetInput
    from workflows.retry_policies import DB_RETRY

MAIL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=2),
)


@workflow.defn
class PasswordReset:
    @workflow.run
    async def run(self, input: PasswordResetInput) -> str:
        headline = f"password reset {input.reset_id}"
        workflow.set_current_details(f"{headline}, step: loading the link's expiry")
        schedule = await workflow.execute_activity_method(
            AccountActivities.load_password_reset,
            input,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=DB_RETRY,
        )
        remaining = schedule.expires_at - workflow.now()
        if schedule.status == "pending" and remaining > timedelta(0):
            workflow.set_current_details(f"{headline}, step: sending the mail")
            try:
                await workflow.execute_activity_method(
                    MailActivities.send_password_reset_mail,
                    input,
                    start_to_close_timeout=timedelta(seconds=60),
                    schedule_to_close_timeout=remaining,
                    retry_policy=MAIL_RETRY,
                )
            except ActivityError:
                workflow.logger.warning("password reset %s: mail not sent", input.reset_id)
        remaining = schedule.expires_at - workflow.now()
        workflow.set_current_details(
            f"{headline}, step: waiting for the link to be used until"
            f" {schedule.expires_at:%Y-%m-%d %H:%M} UTC"
        )
        if remaining > timedelta(0):
            await workflow.sleep(remaining)
        return await workflow.execute_activity_method(
            AccountActivities.expire_password_reset,
            input,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=DB_RETRY,
        )
