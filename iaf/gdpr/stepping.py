"""How every GDPR step activity runs: count the attempt, honour injected faults, record the outcome.

Failures reach Temporal (and the steps table) as an exception type and a fixed message only:
driver errors can quote SQL parameters, and Temporal histories must stay free of personal data.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from iaf.db.repositories.gdpr_requests import RequestRepository
from iaf.gdpr import faults
from schemas.gdpr import ERASURE_STEPS, StepInput, StepResult

log = logging.getLogger(__name__)
R = TypeVar("R")


def safe_error(exc: BaseException) -> str:
    """A description that cannot carry personal data: our own messages, or class names."""
    if isinstance(exc, faults.InjectedFault | ApplicationError):
        return f"{type(exc).__name__}: {exc}"
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        return f"{type(exc).__name__}({type(exc.orig).__name__})"
    return type(exc).__name__


def _attempt() -> int:
    try:
        return activity.info().attempt
    except RuntimeError:  # called outside an activity (benchmarks, scripts)
        return 1


async def run_step(
    sessionmaker: async_sessionmaker[AsyncSession],
    step: StepInput,
    body: Callable[[AsyncSession], Awaitable[R]],
    *,
    completes_step: bool = True,
    detail: Callable[[R], dict[str, int]] | None = None,
) -> R:
    """Run `body` in one transaction that also marks the step done (when it completes the step)."""
    request_id = uuid.UUID(step.request_id)
    async with sessionmaker() as session:
        requests = RequestRepository(session)
        if step.step in ERASURE_STEPS:
            request = await requests.get(request_id)
            if request is None or request.status != "in_progress":
                # Cancelled (or finished) meanwhile: no erasure step may touch the data then.
                status = request.status if request else "gone"
                raise ApplicationError(
                    f"erasure request is {status}, not in progress",
                    type="NotInProgress",
                    non_retryable=True,
                )
        await requests.step_started(request_id, step.step)
        await session.commit()
    try:
        faults.check(step.request_id, step.step, _attempt())
        async with sessionmaker() as session:
            result = await body(session)
            if completes_step:
                counts = (
                    detail(result)
                    if detail
                    else (result.counts if isinstance(result, StepResult) else {})
                )
                await RequestRepository(session).step_finished(
                    request_id, step.step, "done", detail=counts
                )
            await session.commit()
        return result
    except Exception as exc:
        message = safe_error(exc)
        # The driver's own message names columns and constraints; the parameters stay out.
        cause = str(exc.orig).splitlines()[0] if isinstance(exc, DBAPIError) and exc.orig else ""
        log.warning(
            "GDPR step %s of request %s failed: %s %s", step.step, step.request_id, message, cause
        )
        async with sessionmaker() as session:
            await RequestRepository(session).step_finished(
                request_id, step.step, "error", error=message
            )
            await session.commit()
        if isinstance(exc, ApplicationError):
            raise
        raise ApplicationError(message, type=type(exc).__name__) from None
