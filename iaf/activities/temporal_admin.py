"""Temporal administration for erasure: cancel, delete and scan a subject's workflow executions.

Workflows started on behalf of a user carry SubjectRef = pseudonym(user id). Histories that
mention the subject without that tag (e.g. a RouteMessage that mentioned them) are found by
reading the histories started since the account existed.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from iaf.db.repositories.gdpr import RequestRepository
from iaf.db.repositories.gdpr_erasure import ErasureRepository, Targets
from iaf.gdpr.scan import Needles
from iaf.gdpr.stepping import run_step
from iaf.schemas.gdpr import (
    CancelWorkflowsInput,
    FindingOut,
    StepInput,
    StepResult,
    VerificationPart,
)
from iaf.settings import Settings

# GDPR erasure workflows hold request IDs only; they are the record of the erasure itself.
_KEEP_PREFIX = "erasure-"
_PARALLEL_FETCHES = 8


def _gone(error: RPCError) -> bool:
    return error.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class TemporalAdminActivities:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], temporal: Client, settings: Settings
    ) -> None:
        self.sessionmaker = sessionmaker
        self.temporal = temporal
        self.settings = settings

    async def _subject(self, session: AsyncSession, request_id: str) -> tuple[str, Targets | None]:
        request = await RequestRepository(session).get(uuid.UUID(request_id))
        targets = await ErasureRepository(session).targets(uuid.UUID(request_id))
        return (request.subject_ref if request else ""), targets

    async def _executions(self, query: str) -> AsyncIterator[WorkflowExecution]:
        own = activity.info().workflow_id if activity.in_activity() else None
        async for execution in self.temporal.list_workflows(query, page_size=500):
            if execution.id != own:
                yield execution

    async def _history_bytes(self, execution: WorkflowExecution) -> bytes | None:
        try:
            history = await self.temporal.get_workflow_handle(
                execution.id, run_id=execution.run_id
            ).fetch_history()
        except RPCError as error:
            if _gone(error):
                return None
            raise
        return b"".join(event.SerializeToString() for event in history.events)

    async def _traced(
        self, targets: Targets, only_closed: bool
    ) -> list[tuple[WorkflowExecution, list[str]]]:
        """Executions whose history holds the subject's e-mail, name or id, with what was found."""
        needles = Needles.of(targets.email, targets.name, str(targets.user_id))
        query = (
            f'StartTime >= "{_rfc3339(targets.account_created_at)}" OR ExecutionStatus = "Running"'
        )
        executions = [e async for e in self._executions(query)]
        if only_closed:
            executions = [e for e in executions if e.status != WorkflowExecutionStatus.RUNNING]
        limit = asyncio.Semaphore(_PARALLEL_FETCHES)

        async def check(execution: WorkflowExecution) -> tuple[WorkflowExecution, list[str]]:
            async with limit:
                blob = await self._history_bytes(execution)
            return execution, ([] if blob is None else needles.found_in(blob))

        return list(await asyncio.gather(*(check(e) for e in executions)))

    @activity.defn(name="gdpr_cancel_workflows")
    async def cancel_workflows(self, input: CancelWorkflowsInput) -> StepResult:
        """Freeze, second half: cancel what still runs for the subject (replies, invitations)."""

        async def body(session: AsyncSession) -> StepResult:
            ref, _ = await self._subject(session, input.request_id)
            ids = set(input.workflow_ids)
            query = f'SubjectRef = "{ref}" AND ExecutionStatus = "Running"'
            ids |= {
                e.id async for e in self._executions(query) if not e.id.startswith(_KEEP_PREFIX)
            }
            cancelled = []
            for workflow_id in sorted(ids):
                try:
                    await self.temporal.get_workflow_handle(workflow_id).cancel()
                    cancelled.append(workflow_id)
                except RPCError as error:
                    if not _gone(error):
                        raise
            terminated = await self._wait_closed(cancelled)
            counts = {"workflows_cancelled": len(cancelled), "workflows_terminated": terminated}
            return StepResult(step="freeze", counts=counts)

        return await run_step(
            self.sessionmaker, StepInput(request_id=input.request_id, step="freeze"), body
        )

    @activity.defn(name="gdpr_delete_workflows")
    async def delete_workflows(self, input: StepInput) -> StepResult:
        """Delete the subject's executions (SubjectRef) and closed ones whose history names them."""

        async def body(session: AsyncSession) -> StepResult:
            ref, targets = await self._subject(session, input.request_id)
            doomed: dict[tuple[str, str], WorkflowExecution] = {}
            async for execution in self._executions(f'SubjectRef = "{ref}"'):
                if not execution.id.startswith(_KEEP_PREFIX):
                    doomed[(execution.id, execution.run_id)] = execution
            tagged = len(doomed)
            if targets is not None:
                for execution, found in await self._traced(targets, only_closed=True):
                    if found and not execution.id.startswith(_KEEP_PREFIX):
                        doomed[(execution.id, execution.run_id)] = execution
            for execution in doomed.values():
                await self._delete(execution)
            await self._wait_deleted(list(doomed.values()))
            return StepResult(
                step=input.step,
                counts={"tagged": tagged, "traced": len(doomed) - tagged, "deleted": len(doomed)},
            )

        return await run_step(self.sessionmaker, input, body)

    async def _wait_closed(self, workflow_ids: list[str], patience: float = 60.0) -> int:
        """Cancelled work may still be writing (an agent reply's context): later steps must
        not race it. What has not stopped after `patience` is terminated. Returns that count."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + patience
        running = list(workflow_ids)
        while running:
            still = []
            for workflow_id in running:
                try:
                    description = await self.temporal.get_workflow_handle(workflow_id).describe()
                except RPCError as error:
                    if not _gone(error):
                        raise
                    continue
                if description.status == WorkflowExecutionStatus.RUNNING:
                    still.append(workflow_id)
            running = still
            if running and loop.time() > deadline:
                for workflow_id in running:
                    with contextlib.suppress(RPCError):
                        await self.temporal.get_workflow_handle(workflow_id).terminate("erasure")
                return len(running)
            if running:
                if activity.in_activity():
                    activity.heartbeat(len(running))
                await asyncio.sleep(0.25)
        return 0

    async def _delete(self, execution: WorkflowExecution) -> None:
        from temporalio.api.common.v1 import WorkflowExecution as ExecutionRef
        from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest

        request = DeleteWorkflowExecutionRequest(
            namespace=self.temporal.namespace,
            workflow_execution=ExecutionRef(workflow_id=execution.id, run_id=execution.run_id),
        )
        try:
            await self.temporal.workflow_service.delete_workflow_execution(request)
        except RPCError as error:
            if not _gone(error):
                raise

    async def _wait_deleted(
        self, executions: list[WorkflowExecution], patience: float = 60.0
    ) -> None:
        """Deletion is asynchronous on the server; the step is done only once histories are gone."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + patience
        remaining = list(executions)
        while remaining:
            still = []
            for execution in remaining:
                try:
                    await self.temporal.get_workflow_handle(
                        execution.id, run_id=execution.run_id
                    ).describe()
                    still.append(execution)
                except RPCError as error:
                    if not _gone(error):
                        raise
            remaining = still
            if remaining:
                if loop.time() > deadline:
                    raise TimeoutError(f"{len(remaining)} executions not deleted yet")
                if activity.in_activity():
                    activity.heartbeat(len(remaining))
                await asyncio.sleep(0.5)

    @activity.defn(name="gdpr_verify_temporal")
    async def verify_temporal(self, input: StepInput) -> VerificationPart:
        async def body(session: AsyncSession) -> VerificationPart:
            _, targets = await self._subject(session, input.request_id)
            if targets is None:
                return VerificationPart(store="temporal", checked=0, findings=[])
            results = await self._traced(targets, only_closed=False)
            findings = [
                FindingOut(location=f"temporal:{execution.id}", needle=kind, rows=1)
                for execution, found in results
                for kind in found
            ]
            return VerificationPart(store="temporal", checked=len(results), findings=findings)

        return await run_step(self.sessionmaker, input, body, completes_step=False)
