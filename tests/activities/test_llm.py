"""The streaming activity against the real PostgreSQL: attempts own the reply's deltas."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.llm import DeltaWriter, LlmActivities
from iaf.db.engine import make_engine, make_sessionmaker
from iaf.db.repositories.agents import AgentRunRepository
from iaf.llm.offline import register_offline_provider
from iaf.workflow_calls import reply_workflow_id
from schemas.agents import AgentReplyInput, StreamRequest
from tests.agent_helpers import rows
from tests.helpers import signup


@pytest.fixture
async def llm(settings, database_url) -> AsyncIterator[LlmActivities]:
    register_offline_provider(0)
    engine = make_engine(database_url, 2)
    yield LlmActivities(make_sessionmaker(engine), settings)
    await engine.dispose()


def attempt_env(attempt: int) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info, attempt=attempt, heartbeat_timeout=timedelta(seconds=30)
    )
    return env


async def _running_reply(client, llm: LlmActivities, marker: str = "") -> tuple[str, str]:
    alice = await signup(client)
    room = await alice.new_room()
    message = await alice.say(room["id"], "architect, how should we structure the API?")
    reply = AgentReplyInput(
        reply_id=reply_workflow_id(message["id"], "architect") + f"-{uuid.uuid4().hex[:6]}",
        message_id=message["id"],
        room_id=room["id"],
        agent_id="architect",
        requested_by=alice.id,
    )
    context = {
        "question": {
            "message_id": message["id"],
            "text": f"how should we structure the API? {marker}",
        },
        "history": [],
        "sources": [],
        "memories": [],
        "steps": [],
    }
    async with llm.sessionmaker() as session:
        runs = AgentRunRepository(session)
        await runs.create(reply, status="running")
        await runs.update(reply.reply_id, context=context)
        await session.commit()
    return reply.reply_id, room["id"]


def _deltas(database_url: str, room_id: str) -> list[int]:
    found = rows(
        database_url,
        "SELECT (data->>'attempt')::int FROM room_events WHERE room_id = %s"
        " AND type = 'agent.delta' ORDER BY id",
        room_id,
    )
    return [int(r[0]) for r in found]


async def test_an_attempt_superseded_by_a_later_one_writes_nothing(client, llm, database_url):
    """An attempt Temporal gave up on (missed heartbeat) may still be running: once a later
    attempt claimed the stream, the earlier one can write neither deltas nor the answer."""
    reply_id, room_id = await _running_reply(client, llm, "[offline: slow=20]")
    stale = asyncio.ensure_future(
        attempt_env(1).run(llm.stream_reply, StreamRequest(reply_id=reply_id))
    )
    for _ in range(100):
        if _deltas(database_url, room_id):
            break
        await asyncio.sleep(0.05)
    async with llm.sessionmaker() as session:
        later = await AgentRunRepository(session).claim_stream(reply_id)
        await session.commit()
    assert later is not None and later.stream_attempt == 2
    with pytest.raises(ApplicationError) as refused:
        await stale
    assert refused.value.type == "StreamSuperseded" and refused.value.non_retryable
    written_by_stale = _deltas(database_url, room_id)
    assert written_by_stale and set(written_by_stale) == {1}

    # Temporal's attempt number does not matter (a reset workflow starts again at 1).
    result = await attempt_env(1).run(llm.stream_reply, StreamRequest(reply_id=reply_id))
    assert result.attempt == 3 and result.deltas >= 1
    kinds = rows(
        database_url,
        "SELECT type, (data->>'attempt')::int FROM room_events WHERE room_id = %s"
        " AND type IN ('agent.delta', 'agent.reset') ORDER BY id",
        room_id,
    )
    after_reset = kinds[[k for k, _ in kinds].index("agent.reset") :]
    assert {attempt for _, attempt in after_reset} == {3}
    answer = rows(database_url, "SELECT answer FROM agent_runs WHERE reply_id = %s", reply_id)
    assert answer[0][0] and "offline" in answer[0][0].lower()


def test_nul_characters_from_a_model_are_dropped_before_postgresql_sees_them():
    writer = DeltaWriter(None, None, "reply", "architect", 1, 0.05)  # type: ignore[arg-type]
    writer.add("struct\x00ure")
    writer.add("\x00")
    assert writer.buffer == ["structure"]
