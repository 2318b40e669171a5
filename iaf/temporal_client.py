"""Connecting to Temporal, with a circuit breaker on workflow starts and signals.

Every client made here carries a `StartGuard`: while Temporal is unreachable a start would
otherwise block its caller for the client's whole retry schedule (about 10 s, whatever the
rpc_timeout), on every POST that mentions someone. The guard bounds a start to
`temporal_start_timeout_seconds`, and after a start failed for want of Temporal (or two in
a row ran out of time: one slow start may just be load) it refuses further starts and
signals at once for `temporal_start_backoff_seconds`: the message is
stored already, and the sweep starts its workflow later (rule 5). When Temporal answers, the
guard costs one clock read per call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from temporalio.client import (
    Client,
    Interceptor,
    OutboundInterceptor,
    SignalWorkflowInput,
    StartWorkflowInput,
    WorkflowHandle,
)
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from iaf.observability.tracing import temporal_interceptors
from iaf.settings import Settings

log = logging.getLogger(__name__)

_OUTAGE_STATUSES = {
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.RESOURCE_EXHAUSTED,
}


class TemporalUnavailable(RuntimeError):
    """Raised instead of calling Temporal while the guard is open (a start failed recently)."""


# One start slower than the bound may just be load; this many in a row is an outage.
SLOW_STARTS_FOR_AN_OUTAGE = 2


def is_outage(exc: BaseException) -> bool:
    """Whether an error from a client call means Temporal is unreachable or overloaded."""
    if isinstance(exc, TemporalUnavailable):
        return True
    if isinstance(exc, RPCError):
        return exc.status in _OUTAGE_STATUSES
    # A lazy client that cannot connect raises a plain RuntimeError from the bridge.
    return isinstance(exc, RuntimeError) and str(exc).startswith("Failed client connect")


class StartGuard:
    """A circuit breaker for workflow starts and signals, held by the client it guards."""

    def __init__(
        self,
        timeout_seconds: float,
        backoff_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.timeout_seconds = timeout_seconds
        self.backoff_seconds = backoff_seconds
        self.clock = clock
        self.open_until = 0.0
        self.slow_in_a_row = 0

    @property
    def is_open(self) -> bool:
        return self.open_until > self.clock()

    def check(self) -> None:
        if self.is_open:
            raise TemporalUnavailable("Temporal unreachable a moment ago; left to the sweep")

    def timed_out(self) -> None:
        self.slow_in_a_row += 1
        if self.slow_in_a_row >= SLOW_STARTS_FOR_AN_OUTAGE:
            self.failed()

    def failed(self) -> None:
        if not self.is_open:
            log.warning(
                "Temporal unreachable: workflow starts skipped for %.1f s", self.backoff_seconds
            )
        self.open_until = self.clock() + self.backoff_seconds

    def succeeded(self) -> None:
        self.open_until = 0.0
        self.slow_in_a_row = 0


class _GuardInterceptor(Interceptor):
    def __init__(self, guard: StartGuard) -> None:
        self.guard = guard

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _GuardedCalls(next, self.guard)


class _GuardedCalls(OutboundInterceptor):
    def __init__(self, next: OutboundInterceptor, guard: StartGuard) -> None:
        super().__init__(next)
        self.guard = guard

    async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle[Any, Any]:
        # An eager start (a worker's own, from a local activity) is not cut short: the
        # response carries the first workflow task, which a timeout here would strand.
        bounded = not input.request_eager_start
        return await self._guarded(self.next.start_workflow(input), bounded)  # type: ignore[no-any-return]

    async def signal_workflow(self, input: SignalWorkflowInput) -> None:
        await self._guarded(self.next.signal_workflow(input), True)

    async def _guarded(self, call: Any, bounded: bool) -> Any:
        guard = self.guard
        try:
            guard.check()
        except TemporalUnavailable:
            call.close()
            raise
        try:
            if bounded:
                async with asyncio.timeout(guard.timeout_seconds):
                    result = await call
            else:
                result = await call
        except WorkflowAlreadyStartedError:
            guard.succeeded()
            raise
        except TimeoutError:
            guard.timed_out()
            raise
        except Exception as exc:
            if is_outage(exc):
                guard.failed()
            raise
        guard.succeeded()
        return result


def start_guard(client: Client) -> StartGuard | None:
    """The guard of a client made by `connect`."""
    for interceptor in client.config()["interceptors"]:
        if isinstance(interceptor, _GuardInterceptor):
            return interceptor.guard
    return None


async def connect(settings: Settings, lazy: bool = False) -> Client:
    guard = StartGuard(
        settings.temporal_start_timeout_seconds, settings.temporal_start_backoff_seconds
    )
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        # Tracing (when on) first, so a start the guard refuses is in the trace too.
        interceptors=[*temporal_interceptors(), _GuardInterceptor(guard)],
        lazy=lazy,
    )
