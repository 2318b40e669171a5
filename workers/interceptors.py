"""Worker interceptors: what an activity failure may carry into Temporal history (DESIGN rule 2).

An exception's message often quotes data: a database error names the SQL parameters (an
answer, a message, an e-mail) and the row values of a violated key; an SMTP error names the
recipient. Whatever an activity raises ends up in its workflow's history: as the
ActivityTaskFailed event, as the last failure of a retried attempt, or inside a local
activity's marker. So every exception that is not one of our own ApplicationErrors leaves an
activity as an ApplicationError that carries only the exception's class name; the full error
is logged here, in the worker's own log.

- `type` stays the original class name, so `non_retryable_error_types` keep matching and the
  failure stays retryable as before;
- `from None`: the original (and its cause chain) is not serialised as the failure's cause;
- cancellations, async completion and a broken executor (which must stop the worker) pass
  through untouched;
- an ApplicationError is our own, content-free message (see `tests/workers/test_interceptors.py`
  for the check of every message in the code), but a non-Temporal exception in its cause
  chain is replaced by its class name as well.
"""

from __future__ import annotations

import concurrent.futures
import logging
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError, CancelledError, FailureError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from workers.attempts import AttemptDetailsInterceptor

log = logging.getLogger(__name__)

# Raised by the SDK or needed by it as they are: no data of ours in them.
_PASS_THROUGH: tuple[type[BaseException], ...] = (
    CancelledError,
    concurrent.futures.BrokenExecutor,
)


def content_free(exc: BaseException) -> ApplicationError:
    """An ApplicationError with the class name of `exc` as message and type, and no cause."""
    name = type(exc).__name__
    return ApplicationError(name, type=name)


def _scrub_causes(error: BaseException) -> None:
    """Replace every non-Temporal exception in the cause chain by its class name."""
    current = error
    seen = {id(current)}
    while current.__cause__ is not None and id(current.__cause__) not in seen:
        cause = current.__cause__
        if not isinstance(cause, FailureError):
            replacement = content_free(cause)
            current.__cause__ = replacement
            cause = replacement
        seen.add(id(cause))
        current = cause


class _ContentFreeFailures(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        try:
            return await super().execute_activity(input)
        except _PASS_THROUGH:
            raise
        except ApplicationError as error:
            _scrub_causes(error)
            raise
        except Exception as exc:
            info = activity.info()
            log.warning(
                "activity %s (%s, attempt %d) failed; Temporal gets only %s",
                info.activity_type,
                info.workflow_id,
                info.attempt,
                type(exc).__name__,
                exc_info=exc,
            )
            raise content_free(exc) from None


class ContentFreeFailuresInterceptor(Interceptor):
    """Register on every Worker: `Worker(..., interceptors=[ContentFreeFailuresInterceptor()])`."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ContentFreeFailures(next)


def worker_interceptors() -> list[Interceptor]:
    """The interceptors every Worker of this project runs with (the first is the outermost:
    attempt reports see the failure already reduced to its class name)."""
    return [AttemptDetailsInterceptor(), ContentFreeFailuresInterceptor()]
