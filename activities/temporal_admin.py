"""Temporal administration for erasure: cancel, delete and scan a subject's workflow executions.

Workflows started on behalf of a user carry SubjectRef = pseudonym(user id), and are found by
that one visibility query. Workflows of the subject started without it (invitations and
referrals) are found by their business-key IDs, read from PostgreSQL. A history can also hold
the subject's id without being theirs: a colleague's RouteMessage that mentioned them, an agent
reply in their room. Those live in the subject's rooms (RoomId), so only executions of those
rooms are read, never the whole namespace.

Cancelling and deleting scale with the subject's own activity: calls run with bounded
parallelism, and the wait for deletions uses visibility counts, then one parallel describe
pass. The verification also reads every history started since the account was frozen (a
workflow of the subject started meanwhile), so that part grows with the traffic of the
erasure's own few minutes; each history is fetched at most once per step.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from iaf.db.models import DataSubjectRequest
from iaf.db.repositories.erasure import ErasureRepository
from iaf.db.repositories.erasure_targets import ErasureTargetRepository, Targets
from iaf.db.repositories.gdpr_requests import RequestRepository
from iaf.gdpr.scan import Needles
from iaf.gdpr.stepping import run_step
from iaf.settings import Settings
from schemas.gdpr import (
    CancelWorkflowsInput,
    FindingOut,
    StepInput,
    StepResult,
    VerificationPart,
)

T = TypeVar("T")
R = TypeVar("R")
Key = tuple[str, str]

# GDPR erasure workflows hold request IDs only; they are the record of the erasure itself.
_KEEP_PREFIX = "erasure-"
# History fetches are large responses; cancels, deletes and describes are small calls.
_PARALLEL_FETCHES = 8
_PARALLEL_CALLS = 16
# Values per `X IN (...)` visibility query.
_QUERY_CHUNK = 50


def _gone(error: RPCError) -> bool:
    return error.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _in_queries(field: str, values: Iterable[str]) -> list[str]:
    ordered = sorted(set(values))
    return [
        f"{field} IN ({', '.join(_quote(v) for v in ordered[i : i + _QUERY_CHUNK])})"
        for i in range(0, len(ordered), _QUERY_CHUNK)
    ]


def _key(execution: WorkflowExecution) -> Key:
    return execution.id, execution.run_id


async def _bounded(items: Sequence[T], call: Callable[[T], Awaitable[R]], limit: int) -> list[R]:
    gate = asyncio.Semaphore(limit)

    async def one(item: T) -> R:
        async with gate:
            return await call(item)

    return list(await asyncio.gather(*(one(item) for item in items)))


def _heartbeat(*details: object) -> None:
    if activity.in_activity():
        activity.heartbeat(*details)


class TemporalAdminActivities:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], temporal: Client, settings: Settings
    ) -> None:
        self.sessionmaker = sessionmaker
        self.temporal = temporal
        self.settings = settings

    async def _subject(
        self, session: AsyncSession, request_id: str
    ) -> tuple[DataSubjectRequest | None, Targets | None]:
        request = await RequestRepository(session).get(uuid.UUID(request_id))
        targets = await ErasureTargetRepository(session).get(uuid.UUID(request_id))
        return request, targets

    async def _executions(self, query: str) -> AsyncIterator[WorkflowExecution]:
        async for execution in self.temporal.list_workflows(query, page_size=1000):
            yield execution

    async def _list(self, queries: Iterable[str]) -> dict[Key, WorkflowExecution]:
        found: dict[Key, WorkflowExecution] = {}
        for query in queries:
            async for execution in self._executions(query):
                found[_key(execution)] = execution
        return found

    async def _tagged(self, ref: str) -> dict[Key, WorkflowExecution]:
        """The subject's executions (SubjectRef), every run, except the erasure's own."""
        if not ref:
            return {}
        found = await self._list([f"SubjectRef = {_quote(ref)}"])
        return {k: e for k, e in found.items() if not e.id.startswith(_KEEP_PREFIX)}

    async def _by_ids(self, workflow_ids: Iterable[str]) -> dict[Key, WorkflowExecution]:
        """Every run of these workflow IDs (the untagged ones acting for the subject)."""
        ids = [i for i in workflow_ids if not i.startswith(_KEEP_PREFIX)]
        return await self._list(_in_queries("WorkflowId", ids))

    async def _in_rooms(
        self, targets: Targets, *, closed_only: bool
    ) -> dict[Key, WorkflowExecution]:
        """Executions of the subject's rooms since the account existed: where others' workflows
        can mention the subject by id."""
        since = f"StartTime >= {_quote(_rfc3339(targets.account_created_at))}"
        status = ' AND ExecutionStatus != "Running"' if closed_only else ""
        queries = [
            f"({rooms}) AND {since}{status}"
            for rooms in _in_queries("RoomId", (str(r) for r in targets.room_ids))
        ]
        return await self._list(queries)

    async def _history_text(self, execution: WorkflowExecution) -> bytes | None:
        try:
            history = await self.temporal.get_workflow_handle(
                execution.id, run_id=execution.run_id
            ).fetch_history()
        except RPCError as error:
            if _gone(error):
                return None
            raise
        return b"".join(event.SerializeToString() for event in history.events)

    async def _read(
        self, executions: Sequence[WorkflowExecution], needles: Needles
    ) -> list[tuple[WorkflowExecution, list[str]]]:
        """What each history holds of the subject (e-mail, name, id); [] for a deleted one."""

        async def check(execution: WorkflowExecution) -> tuple[WorkflowExecution, list[str]]:
            blob = await self._history_text(execution)
            return execution, ([] if blob is None else needles.found_in(blob))

        return await _bounded(executions, check, _PARALLEL_FETCHES)

    # --- freeze: cancel what still runs ------------------------------------------------------

    @activity.defn(name="gdpr_cancel_workflows")
    async def cancel_workflows(self, input: CancelWorkflowsInput) -> StepResult:
        """Freeze, second half: cancel what still runs for the subject (replies, invitations)."""

        async def body(session: AsyncSession) -> StepResult:
            request, _ = await self._subject(session, input.request_id)
            ref = request.subject_ref if request else ""
            ids = set(input.workflow_ids)
            if ref:
                query = f'SubjectRef = {_quote(ref)} AND ExecutionStatus = "Running"'
                ids |= {
                    e.id async for e in self._executions(query) if not e.id.startswith(_KEEP_PREFIX)
                }
            ids = {i for i in ids if not i.startswith(_KEEP_PREFIX)}

            async def cancel(workflow_id: str) -> str | None:
                try:
                    await self.temporal.get_workflow_handle(workflow_id).cancel()
                except RPCError as error:
                    if not _gone(error):
                        raise
                    return None
                return workflow_id

            cancelled = [i for i in await _bounded(sorted(ids), cancel, _PARALLEL_CALLS) if i]
            terminated = await self._wait_closed(cancelled)
            counts = {"workflows_cancelled": len(cancelled), "workflows_terminated": terminated}
            return StepResult(step="freeze", counts=counts)

        return await run_step(
            self.sessionmaker, StepInput(request_id=input.request_id, step="freeze"), body
        )

    async def _running(self, workflow_ids: Sequence[str]) -> list[str]:
        async def running(workflow_id: str) -> bool:
            try:
                description = await self.temporal.get_workflow_handle(workflow_id).describe()
            except RPCError as error:
                if not _gone(error):
                    raise
                return False
            return description.status == WorkflowExecutionStatus.RUNNING

        states = await _bounded(workflow_ids, running, _PARALLEL_CALLS)
        return [i for i, still in zip(workflow_ids, states, strict=True) if still]

    async def _wait_closed(self, workflow_ids: list[str], patience: float = 60.0) -> int:
        """Cancelled work may still be writing (an agent reply's context): later steps must
        not race it. What has not stopped after `patience` is terminated. Returns that count."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + patience
        running = list(workflow_ids)
        while running:
            running = await self._running(running)
            if running and loop.time() > deadline:
                for workflow_id in running:
                    with contextlib.suppress(RPCError):
                        await self.temporal.get_workflow_handle(workflow_id).terminate("erasure")
                return len(running)
            if running:
                _heartbeat(len(running))
                await asyncio.sleep(0.25)
        return 0

    # --- delete the subject's executions -----------------------------------------------------

    @activity.defn(name="gdpr_delete_workflows")
    async def delete_workflows(self, input: StepInput) -> StepResult:
        """Delete the subject's executions (SubjectRef), those of their invitations and referrals
        (by ID), and closed ones of their rooms whose history names them."""

        async def body(session: AsyncSession) -> StepResult:
            request, targets = await self._subject(session, input.request_id)
            ref = request.subject_ref if request else ""
            doomed = await self._tagged(ref)
            tagged = len(doomed)
            related = scanned = 0
            if targets is not None:
                ids = await ErasureRepository(session).related_workflow_ids(targets.user_id)
                for key, execution in (await self._by_ids(ids)).items():
                    if key not in doomed:
                        doomed[key] = execution
                        related += 1
                needles = Needles.of(
                    targets.email, targets.name, str(targets.user_id), targets.fingerprints
                )
                suspects = [
                    e
                    for k, e in (await self._in_rooms(targets, closed_only=True)).items()
                    if k not in doomed and not e.id.startswith(_KEEP_PREFIX)
                ]
                scanned = len(suspects)
                for execution, found in await self._read(suspects, needles):
                    if needles.evidence(found):
                        doomed[_key(execution)] = execution
            executions = list(doomed.values())
            await _bounded(executions, self._delete, _PARALLEL_CALLS)
            await self._wait_deleted(ref, executions)
            return StepResult(
                step=input.step,
                counts={
                    "tagged": tagged,
                    "related": related,
                    "histories_read": scanned,
                    "traced": len(doomed) - tagged - related,
                    "deleted": len(doomed),
                },
            )

        return await run_step(self.sessionmaker, input, body)

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

    async def _tagged_left(self, ref: str) -> int:
        if not ref:
            return 0
        tagged = f"SubjectRef = {_quote(ref)}"
        total = (await self.temporal.count_workflows(tagged)).count
        kept = (
            await self.temporal.count_workflows(
                f"{tagged} AND WorkflowId STARTS_WITH {_quote(_KEEP_PREFIX)}"
            )
        ).count
        return total - kept

    async def _present(self, executions: Sequence[WorkflowExecution]) -> list[WorkflowExecution]:
        async def present(execution: WorkflowExecution) -> bool:
            try:
                await self.temporal.get_workflow_handle(
                    execution.id, run_id=execution.run_id
                ).describe()
            except RPCError as error:
                if not _gone(error):
                    raise
                return False
            return True

        states = await _bounded(executions, present, _PARALLEL_CALLS)
        return [e for e, still in zip(executions, states, strict=True) if still]

    async def _wait_deleted(
        self, ref: str, executions: list[WorkflowExecution], patience: float | None = None
    ) -> None:
        """Deletion is asynchronous on the server (the dev server clears about 100 executions a
        second). The cheap visibility count is polled until the tagged ones are gone; then one
        parallel describe pass confirms every execution, and only stragglers are asked again."""
        if not executions:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (patience if patience is not None else 60 + len(executions) / 20)
        delay = 0.2
        while (left := await self._tagged_left(ref)) and loop.time() < deadline:
            _heartbeat(left)
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 2.0)
        remaining = list(executions)
        delay = 0.2
        while remaining := await self._present(remaining):
            if loop.time() > deadline:
                raise TimeoutError(f"{len(remaining)} executions not deleted yet")
            _heartbeat(len(remaining))
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 2.0)

    # --- verification --------------------------------------------------------------------------

    async def _erasure_began(self, session: AsyncSession, request: DataSubjectRequest) -> datetime:
        steps = (await RequestRepository(session).steps([request.id]))[request.id]
        started = [s.started_at for s in steps if s.step == "freeze" and s.started_at]
        return started[0] if started else request.created_at

    @activity.defn(name="gdpr_verify_temporal")
    async def verify_temporal(self, input: StepInput) -> VerificationPart:
        """No execution of the subject is left (SubjectRef count), and the histories that could
        hold their data do not: those of their rooms, everything started since the erasure
        began, and the erasure's own runs. The e-mail and id are traces in any of them; the name
        only in the subject's rooms (elsewhere it is counted for review)."""

        async def body(session: AsyncSession) -> VerificationPart:
            request, targets = await self._subject(session, input.request_id)
            if request is None or targets is None:
                return VerificationPart(store="temporal", checked=0, findings=[])
            findings = [
                FindingOut(location=f"temporal:{e.id}", needle="id", rows=1)
                for e in (await self._tagged(request.subject_ref)).values()
            ]
            in_rooms = await self._in_rooms(targets, closed_only=False)
            began = await self._erasure_began(session, request)
            others = await self._list(
                [
                    f"StartTime >= {_quote(_rfc3339(began))}",
                    f"RequestId = {_quote(str(request.id))}",
                ]
            )
            scope = {**others, **in_rooms}
            needles = Needles.of(
                targets.email, targets.name, str(targets.user_id), targets.fingerprints
            )
            review: list[FindingOut] = []
            for execution, found in await self._read(list(scope.values()), needles):
                location = f"temporal:{execution.id}"
                for kind in found:
                    trace = kind != "name" or (
                        needles.name_is_evidence and _key(execution) in in_rooms
                    )
                    out = FindingOut(location=location, needle=kind, rows=1)
                    (findings if trace else review).append(out)
            return VerificationPart(
                store="temporal", checked=len(scope), findings=findings, review=review
            )

        return await run_step(self.sessionmaker, input, body, completes_step=False)
