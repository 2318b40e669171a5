"""Which attempt a retried activity is on, in its workflow's current details (Temporal UI).

Workflow code cannot see the attempts of an activity Temporal retries for it. So the activity
side reports: when an attempt of a regular activity fails and Temporal will retry it, the
worker signals the workflow (`ATTEMPT_FAILED`: activity type, attempt number, error class,
never the error's text). The workflow side, on every workflow type, appends
"; attempt 3 of stream_agent_reply (last error: LlmUnavailable)" to whatever details the
workflow set, and drops it when that activity completes or the workflow moves to a new step.

- Signals are not commands: existing histories replay unchanged; a workflow running on an
  older worker buffers them and ignores them.
- Local activities are retried inside the workflow task: their failures are in the worker
  log (one line per attempt, with the workflow id) and not signalled.
- An attempt that times out (heartbeat, start-to-close) raises nothing on the worker: the
  Temporal UI's "Pending Activities" shows its attempt and last failure.
- Attempts 1-10 are reported, then every 10th, so a mail retried for days adds a few
  hundred events to its history, not thousands.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    ExecuteWorkflowInput,
    Interceptor,
    StartActivityInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

with workflow.unsafe.imports_passed_through():
    from schemas.workflows import AttemptFailed

log = logging.getLogger(__name__)

ATTEMPT_FAILED = "iaf_activity_attempt_failed"
_SIGNAL_TIMEOUT = timedelta(seconds=5)


def error_type(exc: BaseException) -> str:
    """The class name Temporal records for `exc` (an ApplicationError's type), not its text."""
    if isinstance(exc, ApplicationError) and exc.type:
        return exc.type
    return type(exc).__name__


def _will_retry(info: activity.Info, exc: BaseException) -> bool:
    if info.is_local or isinstance(exc, CancelledError):
        return False
    if isinstance(exc, ApplicationError) and exc.non_retryable:
        return False
    policy = info.retry_policy
    if policy is None:
        return True
    if policy.maximum_attempts and info.attempt >= policy.maximum_attempts:
        return False
    return error_type(exc) not in (policy.non_retryable_error_types or ())


def _worth_reporting(attempt: int) -> bool:
    return attempt <= 10 or attempt % 10 == 0


class _ReportsFailedAttempts(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        try:
            return await super().execute_activity(input)
        except Exception as exc:
            info = activity.info()
            if info.workflow_id and _will_retry(info, exc) and _worth_reporting(info.attempt):
                await _report(info, error_type(exc))
            raise


async def _report(info: activity.Info, error: str) -> None:
    """Best effort: a lost report only leaves the details one attempt behind."""
    notice = AttemptFailed(activity_type=info.activity_type, attempt=info.attempt, error_type=error)
    try:
        handle = activity.client().get_workflow_handle(
            info.workflow_id or "", run_id=info.workflow_run_id
        )
        await handle.signal(ATTEMPT_FAILED, notice, rpc_timeout=_SIGNAL_TIMEOUT)
    except Exception as exc:  # the workflow may be gone; the retry goes on regardless
        log.warning(
            "could not report attempt %d of %s to %s: %s",
            info.attempt,
            info.activity_type,
            info.workflow_id,
            type(exc).__name__,
        )


class _ShowsRetries(WorkflowInboundInterceptor):
    """Keeps one note per retried activity type and renders them after the workflow's text."""

    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        self.retrying: dict[str, AttemptFailed] = {}
        self.shown = ""
        super().init(_ClearsWhenDone(outbound, self))

    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        workflow.set_signal_handler(ATTEMPT_FAILED, self.attempt_failed)
        return await super().execute_workflow(input)

    def attempt_failed(self, notice: AttemptFailed) -> None:
        known = self.retrying.get(notice.activity_type)
        if known is None or known.attempt < notice.attempt:
            self.retrying[notice.activity_type] = notice
            self.render()

    def activity_done(self, activity_type: str) -> None:
        if self.retrying.pop(activity_type, None) is not None:
            self.render()

    def render(self) -> None:
        current = workflow.get_current_details()
        if self.shown and current.endswith(self.shown):
            current = current[: -len(self.shown)]
        self.shown = "".join(
            f"; attempt {n.attempt + 1} of {n.activity_type} (last error: {n.error_type})"
            for n in self.retrying.values()
        )
        workflow.set_current_details(current + self.shown)


class _ClearsWhenDone(WorkflowOutboundInterceptor):
    def __init__(self, next: WorkflowOutboundInterceptor, shows: _ShowsRetries) -> None:
        super().__init__(next)
        self.shows = shows

    def start_activity(self, input: StartActivityInput) -> workflow.ActivityHandle[Any]:
        handle = super().start_activity(input)
        handle.add_done_callback(lambda _: self.shows.activity_done(input.activity))
        return handle


class AttemptDetailsInterceptor(Interceptor):
    """Both halves: the activity worker reports, the workflow worker shows."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ReportsFailedAttempts(next)

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return _ShowsRetries
