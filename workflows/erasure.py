"""Erasure (GDPR Art. 17): grace → freeze → anonymise → delete private data → delete vectors →
delete workflows → delete account → audit → verify.

Every step is an idempotent activity retried with backoff. A run that fails records the failed
step and stops; a retry is a new run of the same workflow ID that skips the steps already done
(the steps table in PostgreSQL says which). The input and every payload carry the request ID only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.gdpr_database import GdprDatabaseActivities
    from activities.gdpr_qdrant import GdprQdrantActivities
    from activities.temporal_admin import TemporalAdminActivities
    from schemas.gdpr import (
        ERASURE_STEPS,
        CancelWorkflowsInput,
        ErasurePlan,
        ErasureResult,
        FinishErasureInput,
        GdprWorkflowInput,
        StepInput,
    )

A = TypeVar("A")
T = TypeVar("T")
QUICK = RetryPolicy(
    initial_interval=timedelta(milliseconds=500), maximum_interval=timedelta(seconds=30)
)
QUICK_TIMEOUT = timedelta(seconds=30)
STEP_TIMEOUT = timedelta(minutes=15)


@workflow.defn
class Erasure:
    def __init__(self) -> None:
        self.cancel_requested = False
        self.grace_over = False
        self.current_step = "grace"

    @workflow.signal
    def cancel(self) -> None:
        """Wakes the grace timer; PostgreSQL already decided whether the cancel is in time."""
        if not self.grace_over:
            self.cancel_requested = True

    @workflow.query
    def progress(self) -> str:
        return self.current_step

    def _details(self, request_id: str, text: str) -> None:
        workflow.set_current_details(f"GDPR erasure request {request_id}, {text}")

    @workflow.run
    async def run(self, input: GdprWorkflowInput) -> ErasureResult:
        plan = await workflow.execute_activity_method(
            GdprDatabaseActivities.erasure_plan,
            input,
            start_to_close_timeout=QUICK_TIMEOUT,
            retry_policy=QUICK,
        )
        if plan.status in ("complete", "cancelled"):
            self._details(input.request_id, f"already {plan.status}")
            return ErasureResult(request_id=input.request_id, status=plan.status)
        if "grace" not in plan.done_steps and not await self._grace(input, plan):
            self._details(input.request_id, "cancelled during the grace period")
            return ErasureResult(request_id=input.request_id, status="cancelled")
        retry = RetryPolicy(
            initial_interval=timedelta(seconds=plan.retry.initial_seconds),
            backoff_coefficient=2.0,
            maximum_interval=timedelta(seconds=60),
            maximum_attempts=plan.retry.maximum_attempts,
        )
        for step in ERASURE_STEPS[1:]:
            if step in plan.done_steps:
                continue
            self.current_step = step
            position = ERASURE_STEPS.index(step) + 1
            self._details(input.request_id, f"step {position}/{len(ERASURE_STEPS)}: {step}")
            try:
                result = await self._step(
                    StepInput(request_id=input.request_id, step=step), plan, retry
                )
            except ActivityError as error:
                self._details(input.request_id, f"failed at step {step}: retry it from the API")
                await self._failed(input.request_id, step)
                raise ApplicationError(
                    f"erasure step {step} failed", type="ErasureStepFailed", non_retryable=True
                ) from error
            if result is not None:
                return result
        self._details(input.request_id, "complete")
        return ErasureResult(request_id=input.request_id, status="complete", clean=True)

    async def _grace(self, input: GdprWorkflowInput, plan: ErasurePlan) -> bool:
        """Durable timer the subject can interrupt; False when the erasure was cancelled."""
        if plan.grace_seconds > 0:
            until = workflow.now() + timedelta(seconds=plan.grace_seconds)
            self._details(
                input.request_id,
                f"step 1/{len(ERASURE_STEPS)}: grace period until {until:%Y-%m-%d %H:%M} UTC"
                " (the subject can still cancel)",
            )
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self.cancel_requested, timeout=timedelta(seconds=plan.grace_seconds)
                )
        self.grace_over = True
        if self.cancel_requested:
            await workflow.execute_activity_method(
                GdprDatabaseActivities.mark_cancelled,
                input,
                start_to_close_timeout=QUICK_TIMEOUT,
                retry_policy=QUICK,
            )
            return False
        status = await workflow.execute_activity_method(
            GdprDatabaseActivities.erasure_begin,
            input,
            start_to_close_timeout=QUICK_TIMEOUT,
            retry_policy=QUICK,
        )
        return status == "in_progress"

    async def _call(
        self,
        method: Callable[[Any, A], Awaitable[T]],
        arg: A,
        retry: RetryPolicy,
        queue: str | None = None,
    ) -> T:
        return await workflow.execute_activity_method(
            method, arg, task_queue=queue, start_to_close_timeout=STEP_TIMEOUT, retry_policy=retry
        )

    async def _step(
        self, step: StepInput, plan: ErasurePlan, retry: RetryPolicy
    ) -> ErasureResult | None:
        """Run one step; returns a result only when the verification ends the workflow."""
        if step.step == "freeze":
            frozen = await self._call(GdprDatabaseActivities.freeze, step, retry)
            ids = CancelWorkflowsInput(request_id=step.request_id, workflow_ids=frozen.workflow_ids)
            await self._call(TemporalAdminActivities.cancel_workflows, ids, retry)
        elif step.step == "delete_vectors":
            queue = plan.retrieval_task_queue
            await self._call(GdprQdrantActivities.delete_vectors, step, retry, queue)
        elif step.step == "delete_workflows":
            await self._call(TemporalAdminActivities.delete_workflows, step, retry)
        elif step.step == "verify":
            return await self._verify(step, plan, retry)
        else:
            method = {
                "anonymise": GdprDatabaseActivities.anonymise,
                "delete_private": GdprDatabaseActivities.delete_private,
                "delete_account": GdprDatabaseActivities.delete_account,
                "audit": GdprDatabaseActivities.audit,
            }[step.step]
            await self._call(method, step, retry)
        return None

    async def _verify(
        self, step: StepInput, plan: ErasurePlan, retry: RetryPolicy
    ) -> ErasureResult:
        """Scan the stores at once (and the export archives), then store the result with a
        signed receipt."""
        scans = [
            self._call(GdprDatabaseActivities.verify_postgres, step, retry),
            self._call(GdprQdrantActivities.verify_qdrant, step, retry, plan.retrieval_task_queue),
            self._call(TemporalAdminActivities.verify_temporal, step, retry),
        ]
        # Runs recorded before the exports scan existed replay without it.
        if workflow.patched("verify-exports"):
            scans.append(self._call(GdprDatabaseActivities.verify_exports, step, retry))
        if workflow.patched("verify-files"):
            scans.append(self._call(GdprDatabaseActivities.verify_files, step, retry))
        parts = await asyncio.gather(*scans)
        result = await workflow.execute_activity_method(
            GdprDatabaseActivities.finish_erasure,
            FinishErasureInput(request_id=step.request_id, parts=list(parts)),
            start_to_close_timeout=QUICK_TIMEOUT,
            retry_policy=QUICK,
        )
        if not result.clean:
            raise ApplicationError(
                "verification found traces of the subject", type="TracesFound", non_retryable=True
            )
        return result

    async def _failed(self, request_id: str, step: str) -> None:
        await workflow.execute_activity_method(
            GdprDatabaseActivities.mark_failed,
            StepInput(request_id=request_id, step=step),
            start_to_close_timeout=QUICK_TIMEOUT,
            retry_policy=QUICK,
        )
