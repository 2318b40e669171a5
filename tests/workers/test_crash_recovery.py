"""A worker process SIGKILLed in the middle of a streamed reply: the reply still completes.

The worker is a real `python -m iaf.cli worker` subprocess with its own task queues and its
own Qdrant path, configured through environment variables like any deployment. After the
kill, the streaming activity's heartbeat times out (2 s here), Temporal retries it on the
restarted worker, which sends agent.reset and streams the whole answer again; the reply is
stored exactly once. Nothing here assumes an idle machine: an extra heartbeat timeout before
the kill (another reset) changes none of the assertions.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx

from iaf.settings import Settings
from iaf.workflow_calls import reply_workflow_id
from tests.agent_helpers import (
    isolated_settings,
    reply_events,
    reply_result,
    rows,
    streamed_text,
    streaming,
    temporal,
)
from tests.helpers import open_stream, serve_api, signup

REPO = Path(__file__).resolve().parents[2]


def worker_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "QDRANT_"))}
    values = {
        "DATA_DIR": settings.data_dir,
        "DATABASE_URL": settings.database_url,
        "TEMPORAL_ADDRESS": settings.temporal_address,
        "TEMPORAL_TASK_QUEUE": settings.temporal_task_queue,
        "TEMPORAL_RETRIEVAL_TASK_QUEUE": settings.temporal_retrieval_task_queue,
        "QDRANT_PATH": settings.resolved_qdrant_path,
        "JWT_SECRET": "test-secret-not-for-production-0123456789",
        "PSEUDONYM_SECRET": "test-pseudonym-secret-0123456789",
        "REPLY_HEARTBEAT_SECONDS": settings.reply_heartbeat_seconds,
        "REPLY_RETRY_INITIAL_SECONDS": settings.reply_retry_initial_seconds,
        "SWEEP_INTERVAL_SECONDS": 1,
    }
    env.update({k: str(v) for k, v in values.items()})
    return env


@contextlib.contextmanager
def worker_process(
    settings: Settings, log: Path, *module_args: str
) -> Iterator[subprocess.Popen[bytes]]:
    """A worker subprocess (`python -m iaf.cli worker`, or `python -m <module_args>`), its
    sweeps kept off the database the other tests share."""
    env = worker_env(settings)
    env.update(SWEEP_MIN_AGE_SECONDS="1e9", KNOWLEDGE_RESUME_AFTER_SECONDS="1e9")
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", *(module_args or ("iaf.cli", "worker"))],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


async def test_a_reply_survives_a_killed_worker(
    database_url: str, temporal_server, tmp_path: Path
) -> None:
    settings = isolated_settings(
        tmp_path,
        database_url,
        temporal_server.address,
        "crash",
        reply_heartbeat_seconds=2.0,
        reply_retry_initial_seconds=0.2,
    )
    tc = await temporal(settings)
    log = tmp_path / "worker.log"
    async with serve_api(settings) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        alice = await signup(http, "Alice Crash-Test")
        room = await alice.new_room("incident")
        async with open_stream(http, alice, room["id"]) as stream:
            with worker_process(settings, log) as first:
                message = await alice.say(
                    room["id"], "@architect how should we structure the API? [offline: slow=20]"
                )
                reply_id = reply_workflow_id(message["id"], "architect")
                await streaming(stream, reply_id)
                os.killpg(first.pid, signal.SIGKILL)
                first.wait()
            before_kill = len(reply_events(stream, reply_id))
            with worker_process(settings, log):
                await stream.wait_for(
                    lambda e: e.event == "agent.done" and e.data["reply_id"] == reply_id, 180
                )
                result = await reply_result(tc, message["id"], "architect", within=60)
    events = reply_events(stream, reply_id)
    kinds = [kind for kind, _ in events]
    assert kinds.count("agent.start") == 1 and kinds[-1] == "agent.done"
    # On a busy machine a heartbeat may also time out before the kill, which adds a reset
    # there: what must hold is that the attempt after the kill starts with one.
    assert "agent.reset" in kinds[before_kill:], "the retry after the kill starts with agent.reset"
    assert kinds.count("agent.done") == 1 and "agent.error" not in kinds
    reset = next(data for kind, data in events if kind == "agent.reset")
    assert reset["attempt"] >= 2
    stored = rows(
        database_url,
        "SELECT id, content FROM messages WHERE metadata->>'reply_id' = %s",
        reply_id,
    )
    assert len(stored) == 1, "exactly one reply message"
    assert result.status == "done" and result.reply_message_id == stored[0][0]
    assert streamed_text(events) == stored[0][1], "after the reset the client got it all"
    assert stored[0][1].startswith("(offline model) As the Architect")
    partial = streamed_text(events[:before_kill])  # what the client showed at the kill
    assert partial and stored[0][1].startswith(partial) and partial != stored[0][1]
