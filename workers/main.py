"""The worker process: one Temporal worker per task queue, plus the unrouted-message sweep."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from iaf.db.engine import make_engine, make_sessionmaker
from iaf.gdpr.resume import resume_requests_forever
from iaf.llm.offline import register_offline_provider
from iaf.retrieval.resume import resume_vector_jobs
from iaf.settings import Settings
from iaf.temporal_client import connect
from workers.interceptors import worker_interceptors
from workers.registry import (
    WorkerClients,
    main_activities,
    main_workflows,
    retrieval_activities,
)
from workers.sweep import sweep_forever

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def running_worker(
    settings: Settings, *, serve_retrieval: bool = True, sweep: bool = True
) -> AsyncIterator[WorkerClients]:
    """Start workers in this event loop; used by `iaf worker`, the dev stack and tests."""
    engine = make_engine(settings.database_url, settings.database_pool_size)
    # Agents call any litellm model; "offline/..." is the deterministic local one.
    register_offline_provider(settings.offline_llm_tokens_per_second)
    temporal = await _connect_with_retry(settings)
    clients = WorkerClients(
        settings=settings, sessionmaker=make_sessionmaker(engine), temporal=temporal
    )
    executor = ThreadPoolExecutor(max_workers=8)
    workers = _workers(clients, executor, serve_retrieval)
    tasks = [asyncio.create_task(w.run(), name=f"worker-{w.task_queue}") for w in workers]
    if serve_retrieval:
        tasks.append(asyncio.create_task(_warm_embedder(clients), name="embedder-warm-up"))
    if sweep:
        tasks += _background_jobs(engine, clients)
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
        if clients.embedder is not None:
            clients.embedder.close()
        await engine.dispose()


def _workers(
    clients: WorkerClients, executor: ThreadPoolExecutor, serve_retrieval: bool
) -> list[Worker]:
    """The main task queue's worker, and the retrieval queue's when this process serves it."""
    settings, temporal = clients.settings, clients.temporal
    workers = [
        Worker(
            temporal,
            task_queue=settings.temporal_task_queue,
            workflows=list(main_workflows()),
            # The sandbox still refuses non-deterministic calls, but workflow modules (constants
            # only, IDs in and out) are not re-imported for every run: ~7 ms less before an
            # agent's first token, measured on the agents benchmark.
            workflow_runner=SandboxedWorkflowRunner(
                restrictions=SandboxRestrictions.default.with_passthrough_all_modules()
            ),
            activities=list(main_activities(clients, serve_retrieval)),
            activity_executor=executor,
            interceptors=worker_interceptors(),
        )
    ]
    if serve_retrieval:
        workers.append(
            Worker(
                temporal,
                task_queue=settings.temporal_retrieval_task_queue,
                activities=list(retrieval_activities(clients)),
                activity_executor=executor,
                interceptors=worker_interceptors(),
            )
        )
    return workers


def _background_jobs(engine: AsyncEngine, clients: WorkerClients) -> list[asyncio.Task[None]]:
    """What nothing else would start after an outage: unrouted messages (rule 5), knowledge
    and memory jobs, GDPR requests."""
    settings, temporal, sessionmaker = clients.settings, clients.temporal, clients.sessionmaker
    return [
        asyncio.create_task(sweep_forever(engine, sessionmaker, temporal, settings), name="sweep"),
        asyncio.create_task(_resume_vector_jobs_forever(clients), name="vector-jobs"),
        asyncio.create_task(resume_requests_forever(sessionmaker, temporal, settings), name="gdpr"),
    ]


async def _warm_embedder(clients: WorkerClients) -> None:
    """Load the embedding model now rather than in the first reply's context step."""
    warm = getattr(clients.embedder, "warm", None)
    if warm is not None:
        try:
            await warm()
        except Exception as exc:
            log.warning("embedding model not loaded yet (%s); the first use retries", exc)


async def _resume_vector_jobs_forever(clients: WorkerClients) -> None:
    """Knowledge and memory jobs whose workflow never started (Temporal was away): rule 5."""
    while True:
        await asyncio.sleep(clients.settings.sweep_interval_seconds)
        try:
            await resume_vector_jobs(clients.sessionmaker, clients.temporal, clients.settings)
        except Exception as exc:
            log.warning("resuming knowledge jobs failed (%s); retrying next round", exc)


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
