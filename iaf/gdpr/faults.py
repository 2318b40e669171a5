"""Fault injection for tests: make a step's activity fail on its first N attempts.

Plans live only in this process's memory and are keyed by request id; nothing in the API,
the CLI or the settings can create one, so production workers never fail on purpose.
Tests that run the worker in-process call `inject()`.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio.exceptions import ApplicationError


@dataclass(frozen=True)
class FaultPlan:
    failures: int
    # A permanent fault is non-retryable: the workflow stops and the request goes to error.
    permanent: bool = False


_PLANS: dict[tuple[str, str], FaultPlan] = {}


class InjectedFault(Exception):
    """Raised instead of doing the step's work."""


def inject(request_id: str, step: str, failures: int = 0, permanent: bool = False) -> None:
    _PLANS[(request_id, step)] = FaultPlan(failures, permanent)


def clear(request_id: str) -> None:
    for key in [k for k in _PLANS if k[0] == request_id]:
        del _PLANS[key]


def check(request_id: str, step: str, attempt: int) -> None:
    """Called at the start of every step activity; a no-op unless a test injected a plan."""
    if not _PLANS:
        return
    plan = _PLANS.get((request_id, step))
    if plan is None:
        return
    if plan.permanent:
        raise ApplicationError(
            f"injected permanent fault in {step}", type="InjectedFault", non_retryable=True
        )
    if attempt <= plan.failures:
        raise InjectedFault(
            f"injected fault in {step} (attempt {attempt} of {plan.failures} failing)"
        )
