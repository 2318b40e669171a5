"""The worker process: one Temporal worker per task queue, plus the unrouted-message sweep.

Stopping (SIGINT, SIGTERM, or leaving `running_worker`): the background jobs stop, the
Temporal workers stop polling, running activities get `worker_shutdown_grace_seconds` to
finish and are then cancelled. Temporal retries a cancelled one on another worker, or here
after a restart: a streaming reply resumes with agent.reset. With nothing in flight the
whole stop takes well under a second (it used to take up to 20 s: a second SIGINT, sent by
the terminal to the whole process group and again by `iaf dev`, interrupted the shutdown
half-way, and asyncio then waited for tasks the SDK had left behind).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from iaf.db.engine import make_engine, make_sessionmaker
from iaf.files.janitor import remove_abandoned_files_forever
from iaf.gdpr.resume import resume_requests_forever
from iaf.llm.offline import register_offline_provider
from iaf.observability.logs import route_library_loggers
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
from workers.telemetry import InFlightActivities, TelemetryInterceptor, refresh_gauges_forever

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def running_worker(
    settings: Settings, *, serve_retrieval: bool = True, sweep: bool = True
) -> AsyncIterator[WorkerClients]:
    """Start workers in this event loop; used by `iaf worker`, the dev stack and tests."""
    engine = make_engine(settings.database_url, settings.database_pool_size)
    # Agents call any litellm model; "offline/..." is the deterministic local one.
    register_offline_provider(settings.offline_llm_tokens_per_second)
    route_library_loggers(settings)  # litellm is imported by now
    temporal = await _connect_with_retry(settings)
    clients = WorkerClients(
        settings=settings, sessionmaker=make_sessionmaker(engine), temporal=temporal
    )
    executor = ThreadPoolExecutor(max_workers=8)
    in_flight = InFlightActivities()
    workers = _workers(clients, executor, serve_retrieval, in_flight)
    if serve_retrieval:
        # Before polling: loading the model holds the GIL for seconds, and activities taken
        # meanwhile would miss their heartbeats (a restarted worker cost every reply it took
        # an attempt under the chaos suite's load).
        await _warm_embedder(clients)
    polling = [asyncio.create_task(w.run(), name=f"worker-{w.task_queue}") for w in workers]
    background: list[asyncio.Task[None]] = []
    if sweep:
        background += _background_jobs(engine, clients)
    # Everything loaded so far (the SDK, litellm, pydantic models, the embedding model: some
    # 900,000 long-lived objects) out of the collector's reach: every full collection walked
    # them all (600-700 ms of CPU each, measured), as did the last one at exit (seconds on a
    # loaded machine: `iaf dev` had to kill the worker).
    gc.freeze()
    log.info("worker ready: task queues %s", ", ".join(w.task_queue for w in workers))
    try:
        yield clients
    finally:
        await _stop(workers, polling, background, in_flight, settings)
        executor.shutdown(wait=False, cancel_futures=True)
        if clients.embedder is not None:
            clients.embedder.close()
        if clients.vectors is not None:
            await clients.vectors.close()
        await engine.dispose()


# Beyond the grace period: the SDK cancels what still runs and waits for it to finish.
_CANCEL_MARGIN_SECONDS = 2.0


async def _stop(
    workers: list[Worker],
    polling: list[asyncio.Task[None]],
    background: list[asyncio.Task[None]],
    in_flight: InFlightActivities,
    settings: Settings,
) -> None:
    for task in background:
        task.cancel()
    await asyncio.gather(*background, return_exceptions=True)
    grace = settings.worker_shutdown_grace_seconds
    if in_flight.running:
        log.warning(
            "stopping: waiting up to %.1f s for %d %s in flight: %s; what does not finish is"
            " cancelled, and Temporal retries it on another worker (or here after a restart)",
            grace,
            len(in_flight.running),
            "activity" if len(in_flight.running) == 1 else "activities",
            in_flight.describe(),
        )
    else:
        log.info("stopping: nothing in flight")
    try:
        async with asyncio.timeout(grace + _CANCEL_MARGIN_SECONDS):
            await asyncio.gather(*(w.shutdown() for w in workers), return_exceptions=True)
    except TimeoutError:
        log.warning("stopped without waiting for: %s", in_flight.describe())
    for task in polling:
        task.cancel()
    await asyncio.gather(*polling, return_exceptions=True)
    log.info("worker stopped")


def _workers(
    clients: WorkerClients,
    executor: ThreadPoolExecutor,
    serve_retrieval: bool,
    in_flight: InFlightActivities,
) -> list[Worker]:
    """The main task queue's worker, and the retrieval queue's when this process serves it."""
    settings, temporal = clients.settings, clients.temporal
    interceptors = [TelemetryInterceptor(in_flight), *worker_interceptors()]
    grace = timedelta(seconds=settings.worker_shutdown_grace_seconds)
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
            max_concurrent_activities=settings.worker_max_concurrent_activities,
            interceptors=interceptors,
            graceful_shutdown_timeout=grace,
        )
    ]
    if serve_retrieval:
        workers.append(
            Worker(
                temporal,
                task_queue=settings.temporal_retrieval_task_queue,
                activities=list(retrieval_activities(clients)),
                activity_executor=executor,
                interceptors=interceptors,
                graceful_shutdown_timeout=grace,
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
        asyncio.create_task(refresh_gauges_forever(sessionmaker, settings), name="gauges"),
        asyncio.create_task(remove_abandoned_files_forever(sessionmaker, settings), name="files"),
    ]


async def _warm_embedder(clients: WorkerClients) -> None:
    """Load the embedding model now rather than in the first reply's context step."""
    warm = getattr(clients.embedder, "warm", None)
    if warm is not None:
        try:
            await warm()
        except Exception as exc:
            log.warning(
                "embedding model not loaded yet (%s); the first use retries", type(exc).__name__
            )


async def _resume_vector_jobs_forever(clients: WorkerClients) -> None:
    """Knowledge and memory jobs whose workflow never started (Temporal was away): rule 5."""
    while True:
        await asyncio.sleep(clients.settings.sweep_interval_seconds)
        try:
            await resume_vector_jobs(clients.sessionmaker, clients.temporal, clients.settings)
        except Exception as exc:
            log.warning(
                "resuming knowledge jobs failed (%s); retrying next round", type(exc).__name__
            )


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
    """Until SIGINT or SIGTERM; a second signal does not cut the orderly stop short."""
    stop = asyncio.Event()
    main = asyncio.current_task()
    loop = asyncio.get_running_loop()
    ready = False

    def on_signal(sig: signal.Signals) -> None:
        if stop.is_set():
            log.warning("%s again: still stopping (see the line above)", sig.name)
            return
        log.info("%s: stopping", sig.name)
        stop.set()
        if not ready and main is not None:
            main.cancel()  # still starting (waiting for Temporal, say)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        async with running_worker(settings, serve_retrieval=serve_retrieval):
            ready = True
            await stop.wait()
    except asyncio.CancelledError:
        if not stop.is_set():
            raise
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
