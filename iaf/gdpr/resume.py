"""Rule 5 for GDPR requests: one whose workflow never started (Temporal was unreachable when
it was made), or whose run ended without settling it (terminated), is started again.

A request that is pending, in grace or in progress must have a running workflow. The API
starts it right after storing the request, and says nothing when that fails: this periodic
check starts what is missing. A new run of the same workflow ID resumes from the steps the
database records as done. The same round purges erasure targets (e-mail, name) that
outlived their request.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from iaf.db.repositories.erasure_targets import ErasureTargetRepository
from iaf.db.repositories.gdpr_requests import RequestRepository
from iaf.gdpr import service
from iaf.settings import Settings
from iaf.workflow_calls import gdpr_request_is_running

log = logging.getLogger(__name__)
# Longer than an API call takes to store a request and start (or retry) its workflow.
MIN_AGE = timedelta(seconds=30)
BATCH = 200


@dataclass(frozen=True)
class ResumeResult:
    checked: int
    started: int
    targets_purged: int


async def resume_requests_once(
    sessionmaker: async_sessionmaker[AsyncSession],
    temporal: Client,
    settings: Settings,
    *,
    min_age: timedelta = MIN_AGE,
    limit: int = BATCH,
) -> ResumeResult:
    async with sessionmaker() as session:
        requests = await RequestRepository(session).resumable(min_age, limit)
        purged = await ErasureTargetRepository(session).purge_stale()
        await session.commit()
    started = 0
    for request in requests:
        if await gdpr_request_is_running(temporal, request.kind, str(request.id)):
            continue
        if await service.start_workflow(temporal, settings, request):
            log.info("started the missing %s workflow of request %s", request.kind, request.id)
            started += 1
    return ResumeResult(checked=len(requests), started=started, targets_purged=purged)


async def resume_requests_forever(
    sessionmaker: async_sessionmaker[AsyncSession], temporal: Client, settings: Settings
) -> None:
    interval = max(settings.sweep_interval_seconds, 5.0)
    while True:
        await asyncio.sleep(interval)
        try:
            await resume_requests_once(sessionmaker, temporal, settings)
        except Exception as exc:
            log.warning(
                "resuming GDPR requests failed (%s); retrying next round", type(exc).__name__
            )
