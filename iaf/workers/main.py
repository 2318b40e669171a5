"""The worker process: one Temporal worker per task queue, plus the unrouted-message sweep."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.worker import Worker

from iaf.db.engine import make_engine, make_sessionmaker
from iaf.settings import Settings
from iaf.temporal_client import connect
from iaf.workers.registry import (
    WorkerClients,
    main_activities,
    main_workflows,
    retrieval_activities,
)
from iaf.workers.sweep import sweep_forever

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def running_worker(
    settings: Settings, *, serve_retrieval: bool = True, sweep: bool = True
) -> AsyncIterator[WorkerClients]:
    """Start workers in this event loop; used by `iaf worker`, the dev stack and tests."""
    engine = make_engine(settings.database_url, settings.database_pool_size)
    temporal = await _connect_with_retry(settings)
    clients = WorkerClients(settings=settings, sessionmaker=make_sessionmaker(engine), temporal=temporal)
    executor = ThreadPoolExecutor(max_workers=8)
    workers = [
        Worker(
            temporal,
            task_queue=settings.temporal_task_queue,
            workflows=list(main_workflows()),
            activities=list(main_activities(clients)),
            activity_executor=executor,
        )
    ]
    retrieval = list(retrieval_activities(clients)) if serve_retrieval else []
    if retrieval:
        workers.append(
            Worker(temporal, task_queue=settings.temporal_retrieval_task_queue, activities=retrieval,
                   activity_executor=executor)
        )
    tasks = [asyncio.create_task(w.run(), name=f"worker-{w.task_queue}") for w in workers]
    if sweep:
        tasks.append(asyncio.create_task(sweep_forever(engine, clients.sessionmaker, temporal, settings)))
    try:
        yield clients
    finally:
        for worker in workers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(worker.shutdown(), timeout=15)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        executor.shutdown(wait=False)
        await engine.dispose()


async def _connect_with_retry(settings: Settings, attempts: int = 120) -> Client:
    for attempt in range(attempts):
        try:
            return await connect(settings)
        except Exception as exc:
            if attempt == attempts - 1:
                raise
            if attempt % 10 == 0:
                log.info("waiting for Temporal at %s (%s)", settings.temporal_address, exc)
            await asyncio.sleep(0.5)
    raise RuntimeError("unreachable")


async def run_worker(settings: Settings, serve_retrieval: bool = True) -> None:
    async with running_worker(settings, serve_retrieval=serve_retrieval):
        await asyncio.Event().wait()
