"""A worker asked to stop (SIGTERM) while it streams a reply says what it waits for, stops,
and the reply continues on the next worker: the streaming step is retried there, once."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx
import pytest

from iaf.workflow_calls import reply_workflow_id
from tests.agent_helpers import (
    isolated_settings,
    reply_events,
    reply_result,
    rows,
    streamed_text,
    temporal,
)
from tests.helpers import open_stream, serve_api, signup
from tests.workers.test_crash_recovery import worker_process

GRACE_SECONDS = 1.0


async def test_a_stopped_worker_hands_its_streaming_reply_to_the_next(
    database_url: str, temporal_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKER_SHUTDOWN_GRACE_SECONDS", str(GRACE_SECONDS))
    settings = isolated_settings(
        tmp_path, database_url, temporal_server.address, "stop", reply_retry_initial_seconds=0.2
    )
    tc = await temporal(settings)
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    async with serve_api(settings) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        alice = await signup(http, "Alice Graceful")
        room = await alice.new_room("handover")
        async with open_stream(http, alice, room["id"]) as stream:
            with worker_process(settings, first_log) as first:
                message = await alice.say(
                    room["id"], "@architect how do we roll out? [offline: slow=20]"
                )
                reply_id = reply_workflow_id(message["id"], "architect")
                await stream.wait_for(
                    lambda e: (
                        e.event == "agent.delta"
                        and e.data["reply_id"] == reply_id
                        and e.data["seq"] >= 3
                    ),
                    180,
                )
                first.send_signal(signal.SIGTERM)
                assert first.wait(60) == 0
            with worker_process(settings, second_log):
                await stream.wait_for(
                    lambda e: e.event == "agent.done" and e.data["reply_id"] == reply_id, 180
                )
                result = await reply_result(tc, message["id"], "architect", within=60)
    said = [json.loads(line) for line in first_log.read_text().splitlines() if line.startswith("{")]
    waiting = [line for line in said if "in flight" in line["msg"]]
    assert waiting and waiting[0]["level"] == "WARNING", [line["msg"] for line in said]
    assert f"stream_agent_reply of {reply_id}" in waiting[0]["msg"]
    assert f"up to {GRACE_SECONDS:.1f} s" in waiting[0]["msg"]
    assert any(line["msg"] == "worker stopped" for line in said)

    events = reply_events(stream, reply_id)
    kinds = [kind for kind, _ in events]
    assert kinds.count("agent.start") == 1 and kinds.count("agent.done") == 1
    assert "agent.reset" in kinds and "agent.error" not in kinds, "retried, not failed"
    stored = rows(
        database_url, "SELECT id, content FROM messages WHERE metadata->>'reply_id' = %s", reply_id
    )
    assert len(stored) == 1 and result.status == "done"
    assert result.reply_message_id == stored[0][0]
    assert streamed_text(events) == stored[0][1]
