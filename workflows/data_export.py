"""DataExport (GDPR Art. 15/20): build the archive, keep it for the link period, then delete it."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.gdpr_database import GdprDatabaseActivities
    from schemas.gdpr import ExportResult, GdprWorkflowInput, StepInput

QUICK = RetryPolicy(
    initial_interval=timedelta(milliseconds=500), maximum_interval=timedelta(seconds=30)
)
QUICK_TIMEOUT = timedelta(seconds=30)


@workflow.defn
class DataExport:
    @workflow.run
    async def run(self, input: GdprWorkflowInput) -> ExportResult:
        headline = f"GDPR export request {input.request_id}"
        workflow.set_current_details(f"{headline}, step: planning")
        plan = await workflow.execute_activity_method(
            GdprDatabaseActivities.export_plan,
            input,
            start_to_close_timeout=QUICK_TIMEOUT,
            retry_policy=QUICK,
        )
        if plan.status in ("complete", "cancelled"):
            return ExportResult(request_id=input.request_id, status=plan.status)
        retry = RetryPolicy(
            initial_interval=timedelta(seconds=plan.retry.initial_seconds),
            maximum_interval=timedelta(seconds=60),
            maximum_attempts=plan.retry.maximum_attempts,
        )
        step = StepInput(request_id=input.request_id, step="archive")
        workflow.set_current_details(f"{headline}, step: building the archive")
        try:
            result = await workflow.execute_activity_method(
                GdprDatabaseActivities.export_archive,
                step,
                start_to_close_timeout=timedelta(minutes=15),
                retry_policy=retry,
            )
        except (ActivityError, asyncio.CancelledError) as error:
            if is_cancelled_exception(error):  # by the person, or an operator in the UI
                await workflow.execute_activity_method(
                    GdprDatabaseActivities.mark_cancelled,
                    input,
                    start_to_close_timeout=QUICK_TIMEOUT,
                    retry_policy=QUICK,
                )
                raise asyncio.CancelledError() from None
            workflow.set_current_details(f"{headline}: failed building the archive")
            await workflow.execute_activity_method(
                GdprDatabaseActivities.mark_failed,
                step,
                start_to_close_timeout=QUICK_TIMEOUT,
                retry_policy=QUICK,
            )
            raise ApplicationError(
                "export failed", type="ExportFailed", non_retryable=True
            ) from error
        if result.status != "complete":
            return result
        # The download link's lifetime: a durable timer, then the archive is removed.
        until = workflow.now() + timedelta(seconds=result.expires_in_seconds)
        workflow.set_current_details(
            f"{headline}: archive ready; download link open until {until:%Y-%m-%d %H:%M} UTC"
        )
        await workflow.sleep(timedelta(seconds=result.expires_in_seconds))
        await workflow.execute_activity_method(
            GdprDatabaseActivities.export_expire,
            input,
            start_to_close_timeout=QUICK_TIMEOUT,
            retry_policy=QUICK,
        )
        return result
