"""The notification step several workflows end with (not a workflow): queue e-mail
notifications for the people concerned who are offline. Best effort: a failure is logged and
never fails the reply, routing or invitation it reports on."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.notifications import NotificationActivities
    from schemas.notifications import NotifyRequest

NOTIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=500),
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=6,
)


async def notify(request: NotifyRequest) -> None:
    try:
        await workflow.execute_local_activity_method(
            NotificationActivities.notify,
            request,
            start_to_close_timeout=timedelta(seconds=20),
            retry_policy=NOTIFY_RETRY,
        )
    except (ActivityError, ApplicationError) as err:
        workflow.logger.warning("notifications not queued (%s)", type(err).__name__)
