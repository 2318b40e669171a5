"""Benchmark: agent replies through Temporal versus the same steps run directly.

Latency: from the POST of a message that mentions an agent to the first `agent.delta` an SSE
client of the room receives (and to `agent.done`), with the offline model at zero latency
(OFFLINE_LLM_TOKENS_PER_SECOND=0). The product path is API → RouteMessage → AgentReply on a
worker process. The baseline, measured in the same run and interleaved sample by sample,
runs the same steps in one process without Temporal: a "direct runner" subprocess calls the
same activity methods (record_mentions, begin_reply, build_reply_context + the planner,
stream_reply through litellm, persist_reply, which settles) in the workflow's order, writing
the same rows and events, after the same HTTP POST (whose text carries no "@", so the API
does not start RouteMessage for it; record_mentions still runs on it).

Throughput: agent replies per second with 1 and then 2 worker processes (the second runs
`iaf worker --no-retrieval`: the embedded Qdrant admits one process), closed loop, each client
its own user and room, waiting for `agent.done` before posting again. CPU time per process
(psutil, user + system, PostgreSQL backends included through the postmaster's children)
says which process is the bottleneck; the whole machine's busy time says how much of the
2 cores other tenants took meanwhile (wall-clock figures on a shared machine are noisy: the
CPU milliseconds per reply are the steadier figure).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from bench.profile import record, summarise
from bench.stack import BenchStack, bench_stack
from bench.stats import summary_ms, write_results

AGENT = "architect"
LATENCY_SAMPLES = 40
WARMUP_SAMPLES = 3
THROUGHPUT_SECONDS = 12.0
CONCURRENCY = 12
REPO = Path(__file__).resolve().parent.parent


# --- HTTP and SSE helpers ------------------------------------------------------------------


async def _signup(http: aiohttp.ClientSession, base: str) -> tuple[str, str]:
    body = {
        "email": f"a-{uuid.uuid4().hex[:12]}@example.com",
        "password": "bench password",
        "name": "Bench",
    }
    async with http.post(f"{base}/api/auth/signup", json=body) as response:
        data = await response.json()
    return data["access_token"], data["user"]["id"]


async def _room(http: aiohttp.ClientSession, base: str, token: str) -> str:
    async with http.post(
        f"{base}/api/chat/rooms",
        json={"name": "agents bench"},
        headers={"Authorization": f"Bearer {token}"},
    ) as response:
        return str((await response.json())["id"])


@dataclass
class RoomWatch:
    """One room's SSE stream; remembers when each reply's first delta and end arrived."""

    first_delta: dict[str, float] = field(default_factory=dict)
    ended: dict[str, asyncio.Future[str]] = field(default_factory=dict)
    ended_at: dict[str, float] = field(default_factory=dict)
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    def end(self, reply_id: str) -> asyncio.Future[str]:
        return self.ended.setdefault(reply_id, asyncio.get_running_loop().create_future())

    async def read(self, http: aiohttp.ClientSession, url: str, token: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        async with http.get(
            url, headers=headers, timeout=aiohttp.ClientTimeout(total=None)
        ) as response:
            self.connected.set()
            event = ""
            async for raw in response.content:
                line = raw.decode().rstrip("\r\n")
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event.startswith("agent."):
                    now = time.perf_counter()
                    reply_id = json.loads(line[5:]).get("reply_id", "")
                    if event == "agent.delta":
                        self.first_delta.setdefault(reply_id, now)
                    elif event in ("agent.done", "agent.error"):
                        self.ended_at.setdefault(reply_id, now)
                        future = self.end(reply_id)
                        if not future.done():
                            future.set_result(event)


@dataclass
class Client:
    http: aiohttp.ClientSession
    base: str
    token: str
    user_id: str
    room_id: str
    watch: RoomWatch
    task: asyncio.Task[None]

    async def post(self, content: str) -> int:
        async with self.http.post(
            f"{self.base}/api/chat/rooms/{self.room_id}/messages",
            json={"content": content},
            headers={"Authorization": f"Bearer {self.token}"},
        ) as response:
            assert response.status == 201, await response.text()
            return int((await response.json())["id"])


async def _client(http: aiohttp.ClientSession, base: str) -> Client:
    token, user_id = await _signup(http, base)
    room_id = await _room(http, base, token)
    watch = RoomWatch()
    task = asyncio.create_task(watch.read(http, f"{base}/api/chat/rooms/{room_id}/events", token))
    await asyncio.wait_for(watch.connected.wait(), 30)
    await asyncio.sleep(0.2)  # the stream subscribes right after its headers go out
    return Client(http, base, token, user_id, room_id, watch, task)


# --- the direct (no Temporal) path ------------------------------------------------------------


class DirectRunner:
    """A subprocess that runs a reply's steps in-process when told a message id."""

    def __init__(self, stack: BenchStack) -> None:
        self.stack = stack
        self.process: asyncio.subprocess.Process | None = None
        self.lock = asyncio.Lock()

    async def start(self) -> None:
        env = {
            **self.stack.env,
            "QDRANT_PATH": str(self.stack.data_dir / "qdrant-direct"),
            "PYTHONPATH": str(REPO),
        }
        log = (self.stack.data_dir / "direct-runner.log").open("ab")
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.agents",
            "--direct-runner",
            cwd=REPO,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
        )
        assert (await asyncio.wait_for(self._line(), 180)) == "ready"

    async def _line(self) -> str:
        assert self.process is not None and self.process.stdout is not None
        return (await self.process.stdout.readline()).decode().strip()

    def run(self, message_id: int, room_id: str, user_id: str) -> None:
        """Fire and forget: the SSE client times the reply; `wait` collects the runner's ack."""
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(f"{message_id} {room_id} {user_id}\n".encode())

    async def wait(self) -> str:
        return await asyncio.wait_for(self._line(), 60)

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                await asyncio.wait_for(self.process.wait(), 20)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


async def direct_runner_main() -> None:
    """`python -m bench.agents --direct-runner`: the workflow's steps, without Temporal."""
    from temporalio.testing import ActivityEnvironment

    from activities.agents_db import AgentDbActivities
    from activities.chat_db import ChatDbActivities
    from activities.llm import LlmActivities
    from activities.retrieval import RetrievalActivities
    from iaf.agents.context import plan_step
    from iaf.db.engine import make_engine, make_sessionmaker
    from iaf.db.repositories.agents import AgentRunRepository
    from iaf.llm.offline import register_offline_provider
    from iaf.retrieval.embedder import make_embedder
    from iaf.retrieval.qdrant import make_vector_backend
    from iaf.retrieval.store import VectorStore
    from iaf.settings import Settings
    from iaf.workflow_calls import reply_workflow_id
    from schemas.agents import AgentReplyInput, ContextRequest, ReplyRef, StreamRequest
    from schemas.workflows import MessageRef

    settings = Settings()
    register_offline_provider(settings.offline_llm_tokens_per_second)
    engine = make_engine(settings.database_url, settings.database_pool_size)
    sessionmaker = make_sessionmaker(engine)
    embedder = make_embedder(settings.embedding_model)
    await embedder.embed(["warm up"])
    chat = ChatDbActivities(sessionmaker)
    agents = AgentDbActivities(sessionmaker, None, settings)  # type: ignore[arg-type]
    retrieval = RetrievalActivities(
        sessionmaker, VectorStore(make_vector_backend(settings)), embedder, settings
    )
    llm = LlmActivities(sessionmaker, settings)
    env = ActivityEnvironment()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print("ready", flush=True)
    while line := (await reader.readline()).decode().strip():
        message_id, room_id, user_id = line.split()
        reply_id = reply_workflow_id(int(message_id), AGENT)
        reply = AgentReplyInput(
            reply_id=reply_id,
            message_id=int(message_id),
            room_id=room_id,
            agent_id=AGENT,
            requested_by=user_id,
        )
        await env.run(chat.record_mentions, MessageRef(message_id=int(message_id)))
        async with sessionmaker() as session:  # what start_agent_replies records
            await AgentRunRepository(session).create(reply)
            await session.commit()
        begun = await env.run(agents.begin_reply, reply)
        decision = None
        for step in range(begun.max_steps):
            summary = await env.run(
                retrieval.build_reply_context, ContextRequest(reply_id=reply_id, step=step)
            )
            decision = plan_step(summary, begun.max_steps, begun.retrieval_min_score)
            if decision.action != "refine":
                break
        hint = decision.target if decision and decision.action == "handoff" else None
        await env.run(llm.stream_reply, StreamRequest(reply_id=reply_id, handoff_hint=hint))
        await env.run(agents.persist_reply, ReplyRef(reply_id=reply_id))  # settles too
        print(f"done {reply_id}", flush=True)
    await engine.dispose()


# --- measurements ---------------------------------------------------------------------------


async def _sample(client: Client, content: str, runner: DirectRunner | None) -> tuple[float, float]:
    started = time.perf_counter()
    message_id = await client.post(content)
    reply_id = f"reply-{message_id}-{AGENT}"
    if runner is not None:
        runner.run(message_id, client.room_id, client.user_id)
    outcome = await asyncio.wait_for(client.watch.end(reply_id), 60)
    if runner is not None:
        await runner.wait()
    assert outcome == "agent.done", f"{reply_id}: {outcome}"
    first = client.watch.first_delta[reply_id] - started
    return first, client.watch.ended_at[reply_id] - started


async def measure_latency(
    base: str, runner: DirectRunner, cpu_groups: dict[str, list[psutil.Process]]
) -> dict[str, Any]:
    """Interleaved samples, one room per path, the next sample after the previous reply.

    Also the CPU each process spent per reply: the worker and the Temporal server only work
    for the Temporal path, the direct runner only for the direct one."""
    cpu_before: dict[str, float] = {}
    async with aiohttp.ClientSession() as http:
        via_temporal, direct = await _client(http, base), await _client(http, base)
        samples: dict[str, dict[str, list[float]]] = {
            "temporal": {"first": [], "done": []},
            "direct": {"first": [], "done": []},
        }
        for n in range(WARMUP_SAMPLES + LATENCY_SAMPLES):
            if n == WARMUP_SAMPLES:
                cpu_before = {name: _cpu_seconds(p) for name, p in cpu_groups.items()}
            question = f"how should we shard the orders table, take {n}?"
            first, done = await _sample(via_temporal, f"@{AGENT} {question}", None)
            first_d, done_d = await _sample(direct, f"{AGENT}, {question}", runner)
            if n >= WARMUP_SAMPLES:
                samples["temporal"]["first"].append(first)
                samples["temporal"]["done"].append(done)
                samples["direct"]["first"].append(first_d)
                samples["direct"]["done"].append(done_d)
        cpu_ms = {
            name: round((_cpu_seconds(p) - cpu_before[name]) * 1000 / LATENCY_SAMPLES, 1)
            for name, p in cpu_groups.items()
        }
        for c in (via_temporal, direct):
            c.task.cancel()
    return {
        **{
            path: {"first_delta": summary_ms(s["first"]), "done": summary_ms(s["done"])}
            for path, s in samples.items()
        },
        "cpu_ms_per_reply": cpu_ms,
    }


def _process_groups(
    stack: BenchStack, apis: list[int], workers: list[int]
) -> dict[str, list[psutil.Process]]:
    assert stack.postgres.process is not None and stack.temporal.process is not None
    groups = {f"api-{i + 1}": [psutil.Process(pid)] for i, pid in enumerate(apis)}
    groups |= {f"worker-{i + 1}": [psutil.Process(pid)] for i, pid in enumerate(workers)}
    temporal = psutil.Process(stack.temporal.process.pid)
    groups["temporal"] = [temporal, *temporal.children(recursive=True)]
    postgres = psutil.Process(stack.postgres.process.pid)
    groups["postgres"] = [postgres, *postgres.children(recursive=True)]
    groups["bench-client"] = [psutil.Process(os.getpid())]
    return groups


def _cpu_seconds(processes: list[psutil.Process]) -> float:
    """User + system time, including reaped children (PostgreSQL backends that exited)."""
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
    return total


def _thread_seconds(pid: int) -> dict[int, float]:
    with contextlib.suppress(psutil.NoSuchProcess):
        return {t.id: t.user_time + t.system_time for t in psutil.Process(pid).threads()}
    return {}


def _machine_busy_seconds() -> float:
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def _thread_breakdown(pid: int, before: dict[int, float], elapsed: float) -> dict[str, float]:
    """Is the event loop (the main thread, id == pid) the limit, or another thread?"""
    after = _thread_seconds(pid)
    used = {tid: (t - before.get(tid, 0.0)) / elapsed for tid, t in after.items()}
    others = [v for tid, v in used.items() if tid != pid]
    return {
        "main_thread": round(used.get(pid, 0.0), 2),
        "busiest_other_thread": round(max(others, default=0.0), 2),
        "other_threads": round(sum(others), 2),
    }


async def measure_throughput(
    stack: BenchStack, base: str, apis: list[int], workers: list[int], profile: bool = False
) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=CONCURRENCY * 3)
    async with aiohttp.ClientSession(connector=connector) as http:
        clients = [await _client(http, base) for _ in range(CONCURRENCY)]
        latencies: list[float] = []
        errors = 0
        stop_at = time.perf_counter() + THROUGHPUT_SECONDS

        async def loop(client: Client) -> None:
            nonlocal errors
            n = 0
            while time.perf_counter() < stop_at:
                n += 1
                try:
                    _, done = await _sample(client, f"@{AGENT} capacity question {n}?", None)
                    latencies.append(done)
                except (AssertionError, TimeoutError):
                    errors += 1

        groups = _process_groups(stack, apis, workers)
        before = {name: _cpu_seconds(p) for name, p in groups.items()}
        threads_before = {pid: _thread_seconds(pid) for pid in workers}
        machine_before = _machine_busy_seconds()
        profile_file = stack.data_dir / "worker-1.pyspy.txt"
        sampler = record(workers[0], THROUGHPUT_SECONDS - 2, profile_file) if profile else None
        began = time.perf_counter()
        await asyncio.gather(*(loop(c) for c in clients))
        elapsed = time.perf_counter() - began
        machine = (_machine_busy_seconds() - machine_before) / elapsed
        cpu = {
            name: round((_cpu_seconds(p) - before[name]) / elapsed, 2) for name, p in groups.items()
        }
        threads = {
            f"worker-{i + 1}": _thread_breakdown(pid, threads_before[pid], elapsed)
            for i, pid in enumerate(workers)
        }
        for c in clients:
            c.task.cancel()
    busiest = max(cpu, key=lambda k: cpu[k])
    replies = max(1, len(latencies))
    profiled: dict[str, Any] = {}
    if sampler is not None:
        await asyncio.to_thread(sampler.wait, 60)
        if profile_file.exists():
            profiled = summarise(profile_file)
    return {
        "replies_per_s": round(len(latencies) / elapsed, 1),
        # CPU milliseconds each process spent per completed reply.
        "cpu_ms_per_reply": {
            name: round(cores * elapsed * 1000 / replies, 1) for name, cores in cpu.items()
        },
        "worker_profile": profiled,
        "errors": errors,
        "concurrency": CONCURRENCY,
        "seconds": round(elapsed, 1),
        "post_to_done": summary_ms(latencies),
        "cpu_cores_used": cpu,
        "cpu_total": round(sum(cpu.values()), 2),
        "worker_threads": threads,
        # Everything busy on the machine, ours included: the rest is other tenants' work.
        "machine_cores_busy": round(machine, 2),
        "machine_cores": psutil.cpu_count(),
        "busiest_process": busiest,
    }


async def _wait_for_pollers(stack: BenchStack, count: int) -> None:
    """Until `count` worker processes poll the main task queue for workflow tasks."""
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
    from temporalio.client import Client as TemporalClient

    temporal = await TemporalClient.connect(stack.temporal.address)
    request = DescribeTaskQueueRequest(
        namespace="default",
        task_queue=TaskQueue(name="iaf-main"),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    )
    for _ in range(600):
        described = await temporal.workflow_service.describe_task_queue(request)
        if len({p.identity for p in described.pollers}) >= count:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"fewer than {count} workers are polling")


async def _warm_up(base: str) -> None:
    """One reply end to end: the worker that serves retrieval loads its embedding model."""
    async with aiohttp.ClientSession() as http:
        client = await _client(http, base)
        for n in range(3):
            await _sample(client, f"@{AGENT} warm up {n}", None)
        client.task.cancel()


async def run(stack: BenchStack) -> dict[str, Any]:
    base = stack.api()
    api_pid = stack.processes[-1].pid
    first_worker = stack.spawn("worker")
    runner = DirectRunner(stack)
    await asyncio.gather(_wait_for_pollers(stack, 1), runner.start())
    await _warm_up(base)
    results: dict[str, Any] = {"agent": AGENT, "offline_tokens_per_second": 0}
    assert runner.process is not None
    groups = _process_groups(stack, [api_pid], [first_worker.pid])
    cpu_groups = {
        "worker (Temporal path)": groups["worker-1"],
        "temporal server (Temporal path)": groups["temporal"],
        "direct runner (direct path)": [psutil.Process(runner.process.pid)],
        "api (both paths)": groups["api-1"],
        "postgres (both paths)": groups["postgres"],
    }
    results["latency"] = await measure_latency(base, runner, cpu_groups)
    await runner.stop()
    results["throughput_1_worker"] = await measure_throughput(
        stack, base, [api_pid], [first_worker.pid], profile=True
    )
    second_worker = stack.spawn("worker", "--no-retrieval")
    await _wait_for_pollers(stack, 2)
    await _warm_up(base)
    results["throughput_2_workers"] = await measure_throughput(
        stack, base, [api_pid], [first_worker.pid, second_worker.pid]
    )
    temporal_p50 = results["latency"]["temporal"]["first_delta"]["p50_ms"]
    direct_p50 = results["latency"]["direct"]["first_delta"]["p50_ms"]
    one = results["throughput_1_worker"]["replies_per_s"]
    two = results["throughput_2_workers"]["replies_per_s"]
    results["ratios"] = {
        "first_delta_p50_temporal_over_direct": round(temporal_p50 / direct_p50, 2),
        "replies_2_workers_over_1": round(two / one, 2) if one else None,
    }
    results["goals"] = {
        "first_delta_p50<=1.5x_direct": temporal_p50 <= 1.5 * direct_p50,
        "2_workers>=1.6x_1": bool(one) and two >= 1.6 * one,
    }
    return results


def table(results: dict[str, Any]) -> str:
    lat = results["latency"]
    lines = [
        "| path | first delta p50 ms | p99 ms | agent.done p50 ms | p99 ms | n |",
        "|---|---|---|---|---|---|",
    ]
    for name, key in (
        ("direct, one process, no Temporal (baseline)", "direct"),
        ("API → RouteMessage → AgentReply (Temporal)", "temporal"),
    ):
        first, done = lat[key]["first_delta"], lat[key]["done"]
        lines.append(
            f"| {name} | {first['p50_ms']} | {first['p99_ms']} | {done['p50_ms']} |"
            f" {done['p99_ms']} | {first['n']} |"
        )
    lines.append(f"\nCPU ms per reply (latency runs): {lat['cpu_ms_per_reply']}")
    lines += [
        "",
        "| workers | replies/s | post→done p50 ms | p99 ms | errors | busiest process |"
        " CPU cores used per process |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, key in (("1", "throughput_1_worker"), ("2", "throughput_2_workers")):
        r = results[key]
        cpu = ", ".join(
            f"{k} {v}" for k, v in sorted(r["cpu_cores_used"].items(), key=lambda kv: -kv[1])
        )
        lines.append(
            f"| {label} | {r['replies_per_s']} | {r['post_to_done']['p50_ms']} |"
            f" {r['post_to_done']['p99_ms']} | {r['errors']} | {r['busiest_process']} |"
            f" {cpu} (ours {r['cpu_total']}, whole machine {r['machine_cores_busy']}"
            f" of {r['machine_cores']}) |"
        )
    for label, key in (("1", "throughput_1_worker"), ("2", "throughput_2_workers")):
        lines.append(f"\nworker threads, {label} worker(s): {results[key]['worker_threads']}")
        lines.append(f"CPU ms per reply, {label} worker(s): {results[key]['cpu_ms_per_reply']}")
    profile = results["throughput_1_worker"]["worker_profile"]
    if profile:
        lines.append(f"\nworker-1 profile (py-spy, {profile['samples']} samples), % of its CPU:")
        lines.append(f"  by part: {profile['buckets_percent']}")
        lines.append(f"  top functions (own time): {profile['top_own_percent'][:8]}")
    lines += ["", f"ratios: {results['ratios']}", f"goals: {results['goals']}"]
    return "\n".join(lines)


def main() -> dict[str, Any]:
    with bench_stack(OFFLINE_LLM_TOKENS_PER_SECOND="0", STARTING_CREDITS="100000000") as stack:
        results = asyncio.run(run(stack))
    path = write_results("agents", results)
    print(table(results))
    print(f"\nwritten to {path}")
    return results


if __name__ == "__main__":
    if "--direct-runner" in sys.argv:
        asyncio.run(direct_runner_main())
    else:
        main()
