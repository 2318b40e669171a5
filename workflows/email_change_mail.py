"""EmailChangeMail (`email-change-{id}`): mail the confirmation link to a new address.

The API stores the change and starts this; the activity reads the address and derives the
link from PostgreSQL, so only the change's id passes through Temporal. SMTP outages are
retried with backoff for as long as the link is valid.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.mail import MailActivities
    from schemas.invitations import MailOutcome
    from schemas.profile import EmailChangeMail as EmailChangeMailInput


@workflow.defn
class EmailChangeMail:
    @workflow.run
    async def run(self, mail: EmailChangeMailInput) -> MailOutcome:
        workflow.set_current_details(
            f"e-mail change {mail.email_change_id}, step: sending the mail"
        )
        return await workflow.execute_activity_method(
            MailActivities.send_email_change_mail,
            mail,
            start_to_close_timeout=timedelta(minutes=1),
            schedule_to_close_timeout=timedelta(hours=24),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=2),
                maximum_interval=timedelta(minutes=10),
                non_retryable_error_types=["RecipientRefused"],
            ),
        )
