"""One trace from the HTTP request through RouteMessage and AgentReply to the streaming step.

By default the API starts a mentioned agent's reply itself, beside RouteMessage (for the
first token's latency): both hang from the request's span. With `api_starts_replies` off,
RouteMessage starts it, and the trace runs POST → RouteMessage → AgentReply → stream.
Spans go to an in-memory exporter. The API and the worker here are this test's own (their
Temporal clients are made while tracing is on); the retrieval queue is the session worker's.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from iaf.observability.tracing import install_tracing, uninstall_tracing
from iaf.settings import Settings
from tests.agent_helpers import reply_result, temporal
from tests.helpers import serve_api, signup
from workers.main import running_worker

POST_ROUTE = "POST /api/chat/rooms/{room_id}/messages"


@pytest.fixture
def exporter(settings: Settings) -> Iterator[InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    install_tracing(settings, "test", SimpleSpanProcessor(spans))
    yield spans
    uninstall_tracing()


def ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[str]:
    names = []
    parent = span.parent
    while parent is not None and parent.span_id in by_id:
        found = by_id[parent.span_id]
        names.append(found.name)
        parent = found.parent
    return names


REPLY_FROM_API = ["StartWorkflow:AgentReply", POST_ROUTE]
REPLY_FROM_ROUTE = [
    "StartWorkflow:AgentReply",
    "RunActivity:start_agent_replies",
    "StartActivity:start_agent_replies",
    "StartWorkflow:RouteMessage",
    POST_ROUTE,
]


@pytest.mark.parametrize(
    ("api_starts_replies", "reply_chain"), [(True, REPLY_FROM_API), (False, REPLY_FROM_ROUTE)]
)
async def test_one_trace_spans_the_post_the_workflows_and_the_stream(
    settings: Settings,
    worker: object,
    exporter: InMemorySpanExporter,
    api_starts_replies: bool,
    reply_chain: list[str],
) -> None:
    traced = settings.model_copy(
        update={
            "temporal_task_queue": f"traced-{uuid.uuid4().hex[:8]}",
            "api_starts_replies": api_starts_replies,
        }
    )
    async with (
        running_worker(traced, serve_retrieval=False, sweep=False),
        serve_api(traced) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        alice = await signup(http, "Alice Traced")
        room = await alice.new_room()
        message = await alice.say(room["id"], "@architect a traced question")
        result = await reply_result(await temporal(traced), message["id"], "architect")
        assert result.status == "done"
    spans = exporter.get_finished_spans()
    by_id = {s.context.span_id: s for s in spans}
    (post,) = [s for s in spans if s.name == POST_ROUTE]
    (route,) = [s for s in spans if s.name == "RunWorkflow:RouteMessage"]
    (reply,) = [s for s in spans if s.name == "RunWorkflow:AgentReply"]
    (stream,) = [s for s in spans if s.name == "RunActivity:stream_agent_reply"]
    assert {s.context.trace_id for s in (route, reply, stream)} == {post.context.trace_id}
    # The SDK's interceptor hangs a workflow's own spans under the span that started it.
    assert ancestors(route, by_id) == ["StartWorkflow:RouteMessage", POST_ROUTE]
    assert ancestors(reply, by_id) == reply_chain
    assert ancestors(stream, by_id) == ["StartActivity:stream_agent_reply", *reply_chain]
    assert reply.parent is not None and stream.parent is not None
    assert by_id[stream.parent.span_id].parent == reply.parent, "the same AgentReply start"
    assert post.attributes is not None and post.attributes["http.response.status_code"] == 201
    # Ids, templates and codes only: the message text is nowhere in the trace.
    text = repr([(s.name, s.attributes, s.events) for s in spans])
    assert "traced question" not in text and "Alice" not in text
