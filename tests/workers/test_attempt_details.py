"""A retried activity's attempt shows in its workflow's current details (the Temporal UI).

A real AgentReply on the Temporal dev server, on a worker with the project's interceptors,
whose streaming step fails twice (its message quotes an address) and then streams for real.
Each retry is held until the test has read the details, so no timing is guessed.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from temporalio import activity
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, Worker

from iaf.db.engine import make_engine, make_sessionmaker
from iaf.settings import Settings
from iaf.workflow_calls import reply_workflow_id, start_agent_reply
from schemas.agents import AgentReplyInput, AgentReplyResult, StreamRequest, StreamResult
from tests.agent_helpers import temporal
from tests.helpers import signup
from workers.interceptors import worker_interceptors
from workers.registry import WorkerClients, main_activities, main_workflows

STREAM = "stream_agent_reply"
SECRET = "alice.private@example.com"


def _name(fn: Any) -> str:
    return str(fn.__temporal_activity_definition.name)


async def current_details(handle: WorkflowHandle[Any, Any]) -> str:
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    return metadata.current_details


async def details_until(handle: WorkflowHandle[Any, Any], wanted: str, timeout: float = 60) -> str:
    """Poll the workflow's details until they say `wanted` (a condition, not a guessed time)."""
    details = ""
    try:
        async with asyncio.timeout(timeout):
            while True:
                details = await current_details(handle)
                if wanted in details:
                    return details
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"the details stayed {details!r}") from None


class FlakyStream:
    """Attempts 1 and 2 fail with a ConnectionError; each retry waits for the test's go."""

    def __init__(self, real: Callable[[StreamRequest], Any]) -> None:
        self.real = real
        self.go = {2: asyncio.Event(), 3: asyncio.Event()}

    @activity.defn(name=STREAM)
    async def stream(self, request: StreamRequest) -> StreamResult:
        attempt = activity.info().attempt
        while attempt in self.go and not self.go[attempt].is_set():
            activity.heartbeat()  # the streaming step's heartbeat timeout is short
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.go[attempt].wait(), 0.5)
        if attempt < 3:
            raise ConnectionError(f"the model refused the request of {SECRET}")
        result: StreamResult = await self.real(request)
        return result


@contextlib.asynccontextmanager
async def flaky_worker(
    settings: Settings, database_url: str
) -> AsyncIterator[tuple[Settings, Client, FlakyStream]]:
    own = settings.model_copy(update={"temporal_task_queue": f"iaf-flaky-{uuid.uuid4().hex[:8]}"})
    engine = make_engine(database_url, 2)
    tc = await temporal(settings)
    clients = WorkerClients(settings=own, sessionmaker=make_sessionmaker(engine), temporal=tc)
    activities = list(main_activities(clients, False))
    flaky = FlakyStream(next(a for a in activities if _name(a) == STREAM))
    kept = [a for a in activities if _name(a) != STREAM]
    with ThreadPoolExecutor(2) as executor:
        async with Worker(
            tc,
            task_queue=own.temporal_task_queue,
            workflows=list(main_workflows()),
            activities=[*kept, flaky.stream],
            activity_executor=executor,
            interceptors=worker_interceptors(),
        ):
            yield own, tc, flaky
    await engine.dispose()


async def test_a_retried_stream_shows_its_attempt_and_error_class(client, settings, database_url):
    alice = await signup(client)
    room = await alice.new_room()
    message = await alice.say(room["id"], "architect, how should we structure the API?")
    reply = AgentReplyInput(
        reply_id=reply_workflow_id(message["id"], "architect"),
        message_id=message["id"],
        room_id=room["id"],
        agent_id="architect",
        requested_by=alice.id,
    )
    async with flaky_worker(settings, database_url) as (own, tc, flaky):
        assert await start_agent_reply(tc, own, reply)
        handle = tc.get_workflow_handle(reply.reply_id, result_type=AgentReplyResult)
        seen = []
        for attempt in (2, 3):
            note = f"attempt {attempt} of {STREAM} (last error: ConnectionError)"
            seen.append(await details_until(handle, note))
            flaky.go[attempt].set()
        result = await handle.result()
        final = await current_details(handle)
        history = await handle.fetch_history()
    assert result.status == "done" and result.reply_message_id is not None
    head = f"reply by @architect to message {message['id']}, step: streaming the answer"
    assert all(d.startswith(head) for d in seen), seen
    assert "attempt 2" not in seen[1], "one note per activity: the newest attempt"
    assert "attempt" not in final and "done" in final, "the note goes once the step succeeds"
    assert not any(SECRET in d or "refused" in d for d in [*seen, final])
    # The signals are not commands: the history replays with and without the interceptors
    # (a worker of the version before them ignores the signals).
    for interceptors in (worker_interceptors(), []):
        replayer = Replayer(
            workflows=list(main_workflows()),
            interceptors=interceptors,
            data_converter=pydantic_data_converter,
        )
        await replayer.replay_workflow(history)
