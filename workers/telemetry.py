"""What a worker tells operators: reply and ingestion metrics, gauges read from PostgreSQL,
and which activities are in flight when it is asked to stop.

Reply and ingestion outcomes are counted by a workflow interceptor, from the workflow's own
input and result (ids, counts, statuses): the workflows stay free of metric code. It counts
only what a workflow does for the first time, not what a worker replays (a reply picked up
by another worker after a crash is not started twice), and a workflow task that fails and
is retried (a bug, not a failed workflow) counts nothing.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity, workflow
from temporalio.exceptions import FailureError, is_cancelled_exception
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    ExecuteWorkflowInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from iaf.db.repositories.ops_metrics import OpsMetricsRepository
from iaf.observability.metrics import (
    CREDITS_SPENT,
    GDPR_NEAREST_DEADLINE,
    GDPR_OLDEST_OPEN_AGE,
    GDPR_OVERDUE,
    GDPR_REQUESTS,
    INGESTED_CHUNKS,
    INGESTIONS,
    LLM_TOKENS,
    REPLIES_ENDED,
    REPLIES_STARTED,
    SWEEP_BACKLOG,
)
from iaf.settings import Settings

log = logging.getLogger(__name__)


def _reply_started(arg: Any) -> None:
    REPLIES_STARTED.labels(arg.agent_id).inc()


def _reply_ended(arg: Any, result: Any, outcome: str | None) -> None:
    agent = arg.agent_id
    if result is not None:
        if result.status == "done":
            outcome = "done"
        else:
            outcome = "cancelled" if result.error_code == "cancelled" else "failed"
        LLM_TOKENS.labels(agent, "prompt").inc(result.prompt_tokens)
        LLM_TOKENS.labels(agent, "completion").inc(result.completion_tokens)
        CREDITS_SPENT.labels(agent).inc(result.credits_charged)
    REPLIES_ENDED.labels(agent, outcome or "failed").inc()


def _ingestion_ended(_arg: Any, result: Any, outcome: str | None) -> None:
    if result is not None:
        outcome = str(result.status)
        INGESTED_CHUNKS.inc(result.chunks)
    INGESTIONS.labels(outcome or "failed").inc()


_STARTED: dict[str, Callable[[Any], None]] = {"AgentReply": _reply_started}
_ENDED: dict[str, Callable[[Any, Any, str | None], None]] = {
    "AgentReply": _reply_ended,
    "IngestKnowledge": _ingestion_ended,
}


def _count(action: Callable[[], None]) -> None:
    """Only outside replay; the metrics are plain Python objects outside the sandbox."""
    if workflow.unsafe.is_replaying():
        return
    with workflow.unsafe.sandbox_unrestricted():
        action()


class _WorkflowOutcomes(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        kind = workflow.info().workflow_type
        ended = _ENDED.get(kind)
        if ended is None:
            return await super().execute_workflow(input)
        arg = input.args[0] if input.args else None
        started = _STARTED.get(kind)
        if started is not None:
            _count(lambda: started(arg))
        try:
            result = await super().execute_workflow(input)
        except BaseException as err:
            if is_cancelled_exception(err):
                _count(lambda: ended(arg, None, "cancelled"))
            elif isinstance(err, FailureError):  # anything else fails the task, not the run
                _count(lambda: ended(arg, None, "failed"))
            raise
        _count(lambda: ended(arg, result, None))
        return result


class InFlightActivities:
    """The activities this worker runs right now, for the line it logs when stopping."""

    def __init__(self) -> None:
        self.running: dict[int, tuple[str, str, int]] = {}
        self._ids = itertools.count()

    def describe(self) -> str:
        shown = [f"{kind} of {wf} (attempt {n})" for kind, wf, n in self.running.values()]
        return ", ".join(sorted(shown)[:10]) + (" …" if len(shown) > 10 else "")


class _TrackedActivity(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, in_flight: InFlightActivities) -> None:
        super().__init__(next)
        self.in_flight = in_flight

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        key = next(self.in_flight._ids)
        self.in_flight.running[key] = (info.activity_type, info.workflow_id or "-", info.attempt)
        try:
            return await super().execute_activity(input)
        finally:
            del self.in_flight.running[key]


class TelemetryInterceptor(Interceptor):
    def __init__(self, in_flight: InFlightActivities) -> None:
        self.in_flight = in_flight

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _TrackedActivity(next, self.in_flight)

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return _WorkflowOutcomes


async def refresh_gauges(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    async with sessionmaker() as session:
        ops = OpsMetricsRepository(session)
        by_status = await ops.gdpr_requests_by_status()
        open_requests = await ops.open_gdpr_requests()
        backlog = await ops.unrouted_backlog(settings.sweep_min_age_seconds)
    GDPR_REQUESTS.clear()
    for (kind, status), count in by_status.items():
        GDPR_REQUESTS.labels(kind, status).set(count)
    for gauge in (GDPR_OVERDUE, GDPR_OLDEST_OPEN_AGE, GDPR_NEAREST_DEADLINE):
        gauge.clear()
    for item in open_requests:
        GDPR_OVERDUE.labels(item.kind).set(item.overdue)
        GDPR_OLDEST_OPEN_AGE.labels(item.kind).set(item.oldest_age_seconds)
        GDPR_NEAREST_DEADLINE.labels(item.kind).set(item.seconds_to_nearest_deadline)
    SWEEP_BACKLOG.set(backlog)


async def refresh_gauges_forever(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    while True:
        try:
            await refresh_gauges(sessionmaker, settings)
        except Exception as exc:
            log.warning("metrics gauges not refreshed (%s)", type(exc).__name__)
        await asyncio.sleep(max(settings.sweep_interval_seconds, 5.0))
