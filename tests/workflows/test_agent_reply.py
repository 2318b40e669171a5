"""AgentReply end to end: API -> RouteMessage -> AgentReply -> SSE, on the real stack.

Embedded PostgreSQL, the Temporal dev server, the in-process worker (with Qdrant local mode
and the bundled MiniLM model) and the API; the LLM is the offline litellm provider.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.worker import Worker

from activities.agents_db import AgentDbActivities
from activities.llm import LlmActivities
from iaf.db.engine import make_engine, make_sessionmaker
from iaf.settings import Settings
from iaf.workflow_calls import reply_workflow_id, start_agent_reply
from schemas.agents import (
    AgentReplyInput,
    AgentReplyResult,
    PersistResult,
    ReplyRef,
    StreamRequest,
    StreamResult,
)
from tests.agent_helpers import (
    ingest,
    local_activities,
    reply_events,
    reply_result,
    rows,
    streamed_text,
    temporal,
)
from tests.helpers import colleague, open_stream, signup
from workers.registry import WorkerClients, main_activities, main_workflows

DESIGN_DOC = """API design guide for the Orders platform.

Structure the API around resources: orders, customers and invoices are nouns under /v1.
Version the API in the URL path and never break a published version.

Every list endpoint uses cursor pagination. Errors are JSON objects with a code and a message.
"""
OTHER_ORG_DOC = """Secret pricing playbook. How should we structure the API of the pricing
engine? Structure the API around pricing resources and keep the discount rules private."""
OTHER_ROOM_DOC = """Payments room notes: structure the payments API around ledgers and
transfers; never expose card numbers."""


@pytest.fixture
async def tc(settings) -> Client:
    return await temporal(settings)


def agent_messages(database_url: str, room_id: str) -> list[tuple]:
    return rows(
        database_url,
        "SELECT id, sender_agent_id, content, metadata->>'reply_id', reply_to_id FROM messages"
        " WHERE room_id = %s AND type = 'agent' ORDER BY id",
        room_id,
    )


def ledger(database_url: str, reply_id: str) -> dict[str, int]:
    found = rows(
        database_url, "SELECT source, amount FROM ledger_entries WHERE source_id = %s", reply_id
    )
    return {source: int(amount) for source, amount in found}


def balance(database_url: str, user_id: str) -> int:
    return int(
        rows(
            database_url,
            "SELECT coalesce(sum(amount), 0) FROM ledger_entries WHERE user_id = %s",
            user_id,
        )[0][0]
    )


async def test_reply_streams_and_cites_the_room_document(client, settings, database_url, tc):
    alice = await signup(client, "Alice Architect-Fan")
    room = await alice.new_room("orders")
    other_room = await alice.new_room("payments")
    document = await ingest(alice, "API design guide", DESIGN_DOC, "room", room["id"])
    elsewhere = await ingest(alice, "Payments notes", OTHER_ROOM_DOC, "room", other_room["id"])
    mallory = await signup(client, "Mallory Other-Org")
    foreign = await ingest(mallory, "Secret pricing playbook", OTHER_ORG_DOC, "org")
    assert document["chunk_count"] >= 1 and foreign["status"] == "ready"

    async with open_stream(client, alice, room["id"]) as stream:
        question = "@architect how should we structure the API? [offline: slow=40]"
        message = await alice.say(room["id"], question)
        reply_id = reply_workflow_id(message["id"], "architect")
        await stream.wait_for(
            lambda e: e.event == "agent.done" and e.data["reply_id"] == reply_id, 60
        )
        await stream.wait_for(lambda e: e.event == "message.new" and e.data["type"] == "agent")
    events = reply_events(stream, reply_id)
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "agent.start" and kinds[-1] == "agent.done"
    assert kinds.count("agent.delta") >= 3, kinds
    assert "agent.reset" not in kinds and "agent.error" not in kinds
    assert events[0][1] == {
        "reply_id": reply_id,
        "agent_id": "architect",
        "message_id": message["id"],
        "agent_name": "Architect",
    }
    seqs = [data["seq"] for kind, data in events if kind == "agent.delta"]
    assert seqs == list(range(len(seqs)))

    stored = agent_messages(database_url, room["id"])
    assert len(stored) == 1
    reply_message_id, agent, content, stored_reply_id, reply_to = stored[0]
    assert (agent, stored_reply_id, reply_to) == ("architect", reply_id, message["id"])
    assert events[-1][1]["message_id"] == reply_message_id
    assert streamed_text(events) == content
    assert "[source: API design guide]" in content
    assert "pricing" not in content.lower() and "payments" not in content.lower()

    result = await reply_result(tc, message["id"], "architect")
    assert result.status == "done" and result.reply_message_id == reply_message_id
    run = rows(
        database_url, "SELECT status, context, usage FROM agent_runs WHERE reply_id = %s", reply_id
    )[0]
    assert run[0] == "done"
    used = {s["document_id"] for s in run[1]["sources"]}
    assert used == {document["id"]}, "only this org's documents for this room are retrieved"
    assert foreign["id"] not in used and elsewhere["id"] not in used
    assert "text" not in str(run[1]), "a finished run keeps references, not text"

    entries = ledger(database_url, reply_id)
    charged = result.credits_charged
    assert charged == run[2]["credits"] and charged > 0
    assert entries == {"reply-reserve": -50, "reply-settle": 50 - charged}
    assert balance(database_url, alice.id) == settings.starting_credits - charged


async def test_the_same_post_retried_gives_one_reply(client, database_url, tc):
    alice = await signup(client)
    room = await alice.new_room()
    body = {"content": "@architect how do we split the monolith?", "client_msg_id": "m-1"}
    first = await alice.post(f"/api/chat/rooms/{room['id']}/messages", json=body)
    again = await alice.post(f"/api/chat/rooms/{room['id']}/messages", json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    result = await reply_result(tc, first.json()["id"], "architect")
    assert result.status == "done"
    assert len(agent_messages(database_url, room["id"])) == 1
    runs = rows(
        database_url, "SELECT count(*) FROM agent_runs WHERE message_id = %s", first.json()["id"]
    )
    assert runs[0][0] == 1


async def test_two_mentioned_agents_give_two_replies(client, database_url, tc):
    alice = await signup(client)
    room = await alice.new_room()
    message = await alice.say(room["id"], "@architect @developer how should we structure the code?")
    results = await asyncio.gather(
        reply_result(tc, message["id"], "architect"), reply_result(tc, message["id"], "developer")
    )
    assert [r.status for r in results] == ["done", "done"]
    stored = agent_messages(database_url, room["id"])
    assert sorted(s[1] for s in stored) == ["architect", "developer"]
    assert {s[4] for s in stored} == {message["id"]}
    assert "As the Developer" in next(s[2] for s in stored if s[1] == "developer")


async def follow_chain(tc: Client, message_id: int, agent: str) -> list[AgentReplyResult]:
    results = [await reply_result(tc, message_id, agent)]
    while results[-1].handed_off_to:
        results.append(
            await reply_result(tc, results[-1].reply_message_id or 0, results[-1].handed_off_to)
        )
    return results


async def test_a_handoff_chain_stops_at_depth_3(client, database_url, tc):
    alice = await signup(client)
    room = await alice.new_room()
    chain = "`ask @developer to ask @tester to ask @writer to ask @pm`"
    message = await alice.say(room["id"], f"@architect please {chain} about our API")
    results = await follow_chain(tc, message["id"], "architect")
    assert [r.handed_off_to for r in results] == ["developer", "tester", "writer", None]
    assert results[-1].handoff_blocked == "max_depth"
    stored = agent_messages(database_url, room["id"])
    assert [s[1] for s in stored] == ["architect", "developer", "tester", "writer"]
    assert stored[-1][2].endswith("Handing off to @pm.")
    last = reply_workflow_id(stored[-1][0], "pm")
    with pytest.raises(RPCError):
        await tc.get_workflow_handle(last).describe()
    runs = rows(
        database_url,
        "SELECT agent_id, depth, parent_reply_id, requested_by::text FROM agent_runs"
        " WHERE room_id = %s ORDER BY depth",
        room["id"],
    )
    assert [(r[0], r[1]) for r in runs] == [
        ("architect", 0),
        ("developer", 1),
        ("tester", 2),
        ("writer", 3),
    ]
    assert runs[1][2] == reply_workflow_id(message["id"], "architect")
    assert {r[3] for r in runs} == {alice.id}, "the person who asked pays for the whole chain"


async def test_a_handoff_never_goes_back_into_the_chain(client, database_url, tc):
    alice = await signup(client)
    room = await alice.new_room()
    message = await alice.say(room["id"], "@architect `ask @developer to ask @architect` please")
    results = await follow_chain(tc, message["id"], "architect")
    assert [r.handed_off_to for r in results] == ["developer", None]
    assert results[-1].handoff_blocked == "loop"
    assert agent_messages(database_url, room["id"])[-1][2].endswith("Handing off to @architect.")


async def test_a_retried_stream_resets_and_streams_the_whole_answer(client, database_url, tc):
    alice = await signup(client)
    room = await alice.new_room()
    key = uuid.uuid4().hex
    async with open_stream(client, alice, room["id"]) as stream:
        message = await alice.say(
            room["id"], f"@architect what about caching? [offline: fail-once={key}]"
        )
        reply_id = reply_workflow_id(message["id"], "architect")
        await stream.wait_for(lambda e: e.event == "agent.done" and e.data["reply_id"] == reply_id)
    events = reply_events(stream, reply_id)
    resets = [data for kind, data in events if kind == "agent.reset"]
    assert resets == [{"reply_id": reply_id, "agent_id": "architect", "attempt": 2}]
    stored = agent_messages(database_url, room["id"])
    assert len(stored) == 1 and streamed_text(events) == stored[0][2]


async def test_a_final_failure_tells_the_room_and_releases_credits(
    client, settings, database_url, tc
):
    alice = await signup(client)
    room = await alice.new_room()
    async with open_stream(client, alice, room["id"]) as stream:
        message = await alice.say(room["id"], "@architect explain the plan [offline: fail-after=2]")
        reply_id = reply_workflow_id(message["id"], "architect")
        error = await stream.wait_for(
            lambda e: e.event == "agent.error" and e.data["reply_id"] == reply_id, 60
        )
        notice = await stream.wait_for(
            lambda e: e.event == "message.new" and e.data["type"] == "system"
        )
    assert error.data["error"]["code"] == "llm_failed"
    kinds = [kind for kind, _ in reply_events(stream, reply_id)]
    assert kinds.count("agent.reset") == settings.reply_stream_max_attempts - 1
    assert "agent.done" not in kinds
    assert notice.data["content"].startswith("Architect could not answer")
    assert agent_messages(database_url, room["id"]) == []
    result = await reply_result(tc, message["id"], "architect")
    assert (result.status, result.error_code) == ("error", "llm_failed")
    assert ledger(database_url, reply_id) == {"reply-reserve": -50, "reply-release": 50}
    assert balance(database_url, alice.id) == settings.starting_credits


async def test_a_room_with_a_guest_gets_room_knowledge_only(client, database_url):
    """Org-wide documents answer the org's own people: while a guest from another org is in
    the room, whoever asks, the reply (which the guest reads) draws on the room's only."""
    alice = await signup(client)
    room = await alice.new_room("shared with a guest")
    org_doc = await ingest(alice, "Org handbook", DESIGN_DOC, "org")
    room_doc = await ingest(alice, "Room notes", OTHER_ROOM_DOC, "room", room["id"])
    guest = await signup(client, "Gina Guest")
    rows(
        database_url,
        "INSERT INTO room_members (room_id, user_id, role) VALUES (%s, %s, 'member')"
        " RETURNING user_id",
        room["id"],
        guest.id,
    )
    for person in (alice, guest):
        message = await person.say(room["id"], "@architect how should we structure the API?")
        reply_id = reply_workflow_id(message["id"], "architect")
        for _ in range(300):
            run = rows(
                database_url,
                "SELECT status, context FROM agent_runs WHERE reply_id = %s",
                reply_id,
            )
            if run and run[0][0] == "done":
                break
            await asyncio.sleep(0.1)
        used = {s["document_id"] for s in run[0][1]["sources"]}
        assert used == {room_doc["id"]} and org_doc["id"] not in used, person.user["name"]


async def test_a_running_reply_can_be_cancelled(client, settings, database_url, tc):
    alice = await signup(client)
    bob = await colleague(alice)
    room = await alice.new_room(member_ids=[bob.id])
    outsider = await signup(client, "Eve Outsider")
    async with open_stream(client, alice, room["id"]) as stream:
        message = await alice.say(room["id"], "@architect design our search [offline: slow=4]")
        reply_id = reply_workflow_id(message["id"], "architect")
        await stream.wait_for(lambda e: e.event == "agent.delta" and e.data["reply_id"] == reply_id)
        url = f"/api/chat/rooms/{room['id']}/replies/{reply_id}/cancel"
        assert (await outsider.post(url)).status_code == 404
        refused = await bob.post(url)  # a member, but neither the requester nor a room admin
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
        response = await alice.post(url)
        assert response.status_code == 202, response.text
        assert response.json() == {"reply_id": reply_id, "status": "cancelling"}
        error = await stream.wait_for(
            lambda e: e.event == "agent.error" and e.data["reply_id"] == reply_id, 30
        )
    assert error.data["error"]["code"] == "cancelled"
    handle = tc.get_workflow_handle(reply_id)
    for _ in range(100):
        if (await handle.describe()).status == WorkflowExecutionStatus.CANCELED:
            break
        await asyncio.sleep(0.1)
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    assert agent_messages(database_url, room["id"]) == []
    status = await alice.get(f"/api/chat/rooms/{room['id']}/replies/{reply_id}")
    assert status.json()["status"] == "cancelled"
    assert status.json()["error"]["code"] == "cancelled"
    assert ledger(database_url, reply_id) == {"reply-reserve": -50, "reply-release": 50}
    assert balance(database_url, alice.id) == settings.starting_credits
    assert (await alice.post(url)).status_code == 409


async def test_without_credits_the_agent_does_not_answer(client, database_url, tc):
    alice = await signup(client)
    room = await alice.new_room()
    rows(
        database_url,
        "INSERT INTO ledger_entries (user_id, amount, kind, source, source_id, meta)"
        " VALUES (%s, -990, 'test', 'test-drain', %s, '{}') RETURNING id",
        alice.id,
        alice.id,
    )
    async with open_stream(client, alice, room["id"]) as stream:
        message = await alice.say(room["id"], "@architect how do we scale?")
        reply_id = reply_workflow_id(message["id"], "architect")
        error = await stream.wait_for(
            lambda e: e.event == "agent.error" and e.data["reply_id"] == reply_id
        )
    assert error.data["error"]["code"] == "insufficient_credits"
    assert [k for k, _ in reply_events(stream, reply_id)] == ["agent.error"]
    result = await reply_result(tc, message["id"], "architect")
    assert (result.status, result.error_code) == ("error", "insufficient_credits")
    assert ledger(database_url, reply_id) == {}


async def test_auto_routing_rooms_pick_an_agent(client, database_url, tc):
    alice = await signup(client)
    room = await alice.new_room(auto_route=True)
    by_keywords = await alice.say(room["id"], "our deployment pipeline keeps failing in CI")
    assert (await reply_result(tc, by_keywords["id"], "devops")).status == "done"
    ambiguous = await alice.say(room["id"], "should we test the design?")
    assert (await reply_result(tc, ambiguous["id"], "architect")).status == "done"
    route = await tc.get_workflow_handle(f"route-{ambiguous['id']}").result()
    assert route["routed_by"] == "classifier"
    nothing = await alice.say(room["id"], "What should we do next?")
    route = await tc.get_workflow_handle(f"route-{nothing['id']}").result()
    assert route["agent_ids"] == [] and route["routed_by"] is None
    plain = await signup(client)
    quiet_room = await plain.new_room()
    await plain.say(quiet_room["id"], "our deployment pipeline keeps failing in CI")
    assert [s[1] for s in agent_messages(database_url, room["id"])] == ["devops", "architect"]


async def test_mentioned_people_are_notified(client, database_url):
    alice = await signup(client)
    bob = await colleague(alice, "Bob Mentioned")
    carol = await colleague(alice, "Carol Member")
    room = await alice.new_room(member_ids=[bob.id, carol.id])
    async with open_stream(client, bob, room["id"]) as stream:
        one = await alice.say(room["id"], f"@{bob.user['handle']} can you look?")
        await stream.wait_for(lambda e: e.event == "mention" and e.data["message_id"] == one["id"])
        everyone = await alice.say(room["id"], "@all standup in 5")
        await stream.wait_for(
            lambda e: e.event == "mention" and e.data["message_id"] == everyone["id"]
        )
        await asyncio.sleep(0.5)  # let any duplicate arrive before counting
    mentions = [
        (e.data["message_id"], e.data["user_id"]) for e in stream.events if e.event == "mention"
    ]
    assert mentions.count((one["id"], bob.id)) == 1
    assert sorted(m for m in mentions if m[0] == everyone["id"]) == sorted(
        [(everyone["id"], bob.id), (everyone["id"], carol.id)]
    )
    await alice.say(room["id"], "a message that mentions nobody")
    listed = (await bob.get("/api/chat/rooms")).json()["items"]
    bobs_view = next(r for r in listed if r["id"] == room["id"])
    assert (bobs_view["unread_count"], bobs_view["unread_mentions"]) == (3, 2)
    carols = (await carol.get("/api/chat/rooms")).json()["items"]
    assert next(r for r in carols if r["id"] == room["id"])["unread_mentions"] == 1  # @all
    await bob.post(f"/api/chat/rooms/{room['id']}/read", json={"message_id": everyone["id"]})
    listed = (await bob.get("/api/chat/rooms")).json()["items"]
    bobs_view = next(r for r in listed if r["id"] == room["id"])
    assert (bobs_view["unread_count"], bobs_view["unread_mentions"]) == (1, 0)


async def test_memories_inform_only_their_owners_replies(client, database_url, tc):
    """Only where the owner alone reads the answer: their direct room with agents (a shared
    room's reply is read by everyone in it, so no one's memories go there)."""
    alice = await signup(client)
    bob = await colleague(alice)
    shared = await alice.new_room(member_ids=[bob.id])
    room = await alice.new_room("alice and agents", kind="direct")
    mine = await alice.post("/api/memories", json={"content": "I prefer PostgreSQL databases."})
    theirs = await bob.post("/api/memories", json={"content": "Bob prefers MongoDB databases."})
    assert mine.status_code == theirs.status_code == 201
    for person, memory in ((alice, mine.json()), (bob, theirs.json())):
        for _ in range(300):
            listed = (await person.get("/api/memories")).json()["items"]
            if next(m for m in listed if m["id"] == memory["id"])["status"] == "ready":
                break
            await asyncio.sleep(0.1)
    message = await alice.say(room["id"], "@architect which databases should we pick?")
    result = await reply_result(tc, message["id"], "architect")
    content = agent_messages(database_url, room["id"])[0][2]
    assert "PostgreSQL" in content and "[source: memory]" in content
    assert "MongoDB" not in content
    refs = rows(database_url, "SELECT context FROM agent_runs WHERE reply_id = %s", result.reply_id)
    assert [m["memory_id"] for m in refs[0][0]["memories"]] == [mine.json()["id"]]
    asked = await alice.say(shared["id"], "@architect which databases should we pick?")
    await reply_result(tc, asked["id"], "architect")
    in_shared = agent_messages(database_url, shared["id"])[0][2]
    assert "PostgreSQL" not in in_shared and "MongoDB" not in in_shared


@contextlib.asynccontextmanager
async def own_worker(
    settings: Settings, database_url: str, replace: Callable[[WorkerClients], list[Any]]
) -> AsyncIterator[tuple[Settings, Client]]:
    """A worker on a task queue of its own whose activities of the same names as `replace`'s
    are swapped for those (samples-python's way of faking an activity)."""
    own = settings.model_copy(update={"temporal_task_queue": f"iaf-own-{uuid.uuid4().hex[:8]}"})
    engine = make_engine(database_url, 2)
    tc = await temporal(settings)
    clients = WorkerClients(settings=own, sessionmaker=make_sessionmaker(engine), temporal=tc)
    replacements = replace(clients)
    names = {activity_name(a) for a in replacements}
    kept = [a for a in main_activities(clients, False) if activity_name(a) not in names]
    with ThreadPoolExecutor(2) as executor:
        async with Worker(
            tc,
            task_queue=own.temporal_task_queue,
            workflows=list(main_workflows()),
            activities=[*kept, *replacements],
            activity_executor=executor,
        ):
            yield own, tc
    await engine.dispose()


def activity_name(fn: Any) -> str:
    return str(fn.__temporal_activity_definition.name)


async def _reply_on(own: Settings, tc: Client, person, room, message) -> AgentReplyResult:
    reply = AgentReplyInput(
        reply_id=reply_workflow_id(message["id"], "architect"),
        message_id=message["id"],
        room_id=room["id"],
        agent_id="architect",
        requested_by=person.id,
    )
    assert await start_agent_reply(tc, own, reply)
    return await tc.get_workflow_handle(reply.reply_id, result_type=AgentReplyResult).result()


async def test_a_worker_without_retrieval_sends_the_context_step_to_the_retrieval_queue(
    client, settings, database_url
):
    """begin_reply says "this worker serves retrieval" (as on the worker a reply started on),
    but the worker running the context step registers the refusal a worker without Qdrant
    has: the reply still completes, through the retrieval queue the session's worker serves."""
    alice = await signup(client)
    room = await alice.new_room()
    message = await alice.say(room["id"], "architect, how should we structure the API?")

    def claims_retrieval(clients: WorkerClients) -> list[Any]:
        begin = AgentDbActivities(
            clients.sessionmaker, clients.temporal, clients.settings, serves_retrieval=True
        )
        return [begin.begin_reply, begin.begin_reply_with_context]  # no context built here

    async with own_worker(settings, database_url, claims_retrieval) as (own, tc):
        result = await _reply_on(own, tc, alice, room, message)
        history = await tc.get_workflow_handle(result.reply_id).fetch_history()
    assert result.status == "done" and result.reply_message_id is not None
    scheduled = [
        e.activity_task_scheduled_event_attributes
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    context = [s for s in scheduled if s.activity_type.name == "build_reply_context"]
    assert [s.task_queue.name for s in context] == [settings.temporal_retrieval_task_queue]
    refused = [
        e
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        and e.marker_recorded_event_attributes.HasField("failure")
    ]
    assert len(refused) == 1, "the local attempt was refused once, and that is recorded"


async def test_a_worker_that_serves_retrieval_builds_context_without_a_queue_hop(
    client, settings, database_url, tc
):
    alice = await signup(client)
    room = await alice.new_room()
    message = await alice.say(room["id"], "@architect how should we structure the API?")
    result = await reply_result(tc, message["id"], "architect")
    assert result.status == "done"
    history = await tc.get_workflow_handle(result.reply_id).fetch_history()
    names = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert names == ["stream_agent_reply"], "context is a local activity, streaming the only hop"
    local = local_activities(history)
    # Two local activities where there were five: reserving credits builds the first context
    # step, storing the reply settles its credits and queues the notification.
    assert local == ["begin_agent_reply_with_context", "persist_agent_reply"]
    stored = (await reply_result(tc, message["id"], "architect")).credits_charged
    assert stored > 0 and ledger(database_url, result.reply_id)["reply-settle"] == 50 - stored


async def test_a_database_step_that_keeps_failing_ends_in_agent_error_and_releases_credits(
    client, settings, database_url
):
    """Local activities fail with a bare ApplicationError: AgentReply still cleans up."""
    alice = await signup(client)
    room = await alice.new_room()
    message = await alice.say(room["id"], "architect, how should we structure the API?")

    @activity.defn(name="persist_agent_reply")
    async def persist_fails(ref: ReplyRef) -> PersistResult:
        raise ApplicationError("storage refused", type="StorageDown", non_retryable=True)

    async with open_stream(client, alice, room["id"]) as stream:
        async with own_worker(settings, database_url, lambda _: [persist_fails]) as (own, tc):
            result = await _reply_on(own, tc, alice, room, message)
        reply_id = result.reply_id
        error = await stream.wait_for(
            lambda e: e.event == "agent.error" and e.data["reply_id"] == reply_id
        )
    assert (result.status, result.error_code) == ("error", "failed")
    assert error.data["error"]["code"] == "failed"
    assert ledger(database_url, reply_id) == {"reply-reserve": -50, "reply-release": 50}
    assert agent_messages(database_url, room["id"]) == []


async def test_a_vague_question_is_refined_with_the_message_before_it(client, database_url, tc):
    """Step 0 finds the document only weakly; the planner refines the query with the earlier
    message and retrieves again, and the reply is grounded in what the second step found."""
    alice = await signup(client)
    room = await alice.new_room()
    document = await ingest(
        alice,
        "Orders database",
        "The orders database runs PostgreSQL 16. Orders are partitioned by month and"
        " replicated to a reporting replica with logical replication.",
        "room",
        room["id"],
    )
    await alice.say(room["id"], "We must decide how to partition the orders database tables.")
    message = await alice.say(room["id"], "@architect and what about that?")
    result = await reply_result(tc, message["id"], "architect")
    assert result.status == "done"
    run = rows(database_url, "SELECT context FROM agent_runs WHERE reply_id = %s", result.reply_id)
    steps = run[0][0]["steps"]
    assert result.context_steps >= 2 and [s["step"] for s in steps] == list(range(len(steps)))
    assert steps[-1]["best_score"] > steps[0]["best_score"]
    assert document["id"] in {s["document_id"] for s in run[0][0]["sources"]}


async def test_operators_find_a_reply_by_room_agent_and_kind_and_read_its_summary(
    client, settings, tc
):
    alice = await signup(client, "Alice Operator-Visible")
    room = await alice.new_room()
    message = await alice.say(room["id"], "@architect a question with private words")
    result = await reply_result(tc, message["id"], "architect")
    query = (
        f"RoomId = '{room['id']}' AND AgentId = 'architect' AND Kind = 'agent-reply'"
        " AND ExecutionStatus = 'Completed'"
    )
    found = []
    for _ in range(50):  # visibility is eventually consistent
        found = [w.id async for w in tc.list_workflows(query)]
        if found:
            break
        await asyncio.sleep(0.2)
    assert found == [result.reply_id]
    described = await tc.get_workflow_handle(result.reply_id).describe()
    summary = await described.static_summary()
    assert summary == f"@architect replies to message {message['id']}"
    attributes = {k.name: v for k, v in described.typed_search_attributes}
    assert attributes["SubjectRef"] != alice.id and len(attributes["SubjectRef"]) >= 32
    shown = f"{summary} {await described.static_details()} {attributes}"
    assert "private" not in shown and alice.user["name"] not in shown
    # The progress query (declared on the workflows' shared base class) answers by name.
    assert await tc.get_workflow_handle(result.reply_id).query("progress") == "done"


def stalls_first(calls: int, seen: list[int]) -> Callable[[WorkerClients], list[Any]]:
    """The stream activity: its first `calls` runs stall without a heartbeat, as on a worker
    killed or frozen mid-stream; the later ones stream for real."""

    def replace(clients: WorkerClients) -> list[Any]:
        real = LlmActivities(clients.sessionmaker, clients.settings)

        @activity.defn(name="stream_agent_reply")
        async def stream(request: StreamRequest) -> StreamResult:
            seen.append(activity.info().attempt)
            if len(seen) <= calls:
                await asyncio.sleep(3600)  # cancelled when the test's worker stops
            return await real.stream_reply(request)

        return [stream]

    return replace


def stream_executions(history: Any) -> list[Any]:
    """How each execution of the stream activity ended (a restart schedules a new one)."""
    streams = {
        e.event_id
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == "stream_agent_reply"
    }
    ended = []
    for e in history.events:
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
            scheduled = e.activity_task_timed_out_event_attributes.scheduled_event_id
        elif e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            scheduled = e.activity_task_completed_event_attributes.scheduled_event_id
        else:
            continue
        if scheduled in streams:
            ended.append(e)
    return ended


async def reply_on_lossy_workers(
    client, settings, database_url, *, stalls: int, restarts: int
) -> tuple[AgentReplyResult, Any, list[int], str]:
    """A reply whose first `stalls` stream runs are lost (2 attempts each, 1 s heartbeats):
    its result, its history, the attempt number of every run, and its room."""
    lossy = settings.model_copy(
        update={
            "reply_heartbeat_seconds": 1.0,
            "reply_stream_max_attempts": 2,
            "reply_retry_initial_seconds": 0.1,
            "reply_stream_worker_loss_restarts": restarts,
        }
    )
    alice = await signup(client)
    room = await alice.new_room()
    message = await alice.say(room["id"], "architect, how should we structure the API?")
    seen: list[int] = []
    async with own_worker(lossy, database_url, stalls_first(stalls, seen)) as (own, tc):
        result = await _reply_on(own, tc, alice, room, message)
        history = await tc.get_workflow_handle(result.reply_id).fetch_history()
    return result, history, seen, room["id"]


async def test_a_stream_whose_attempts_all_die_with_their_worker_starts_over(
    client, settings, database_url
):
    """2 attempts, both lost to a stalled worker: the stream starts over instead of failing."""
    result, history, seen, room_id = await reply_on_lossy_workers(
        client, settings, database_url, stalls=3, restarts=2
    )
    assert result.status == "done", result
    assert seen[:3] == [1, 2, 1], "two lost attempts, then a fresh execution's first"
    ended = stream_executions(history)
    assert ended[0].event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT
    assert ended[-1].event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
    assert len(agent_messages(database_url, room_id)) == 1
    assert ledger(database_url, result.reply_id)["reply-settle"] > 0


async def test_a_stream_that_loses_its_workers_more_often_than_allowed_fails(
    client, settings, database_url
):
    result, history, seen, room_id = await reply_on_lossy_workers(
        client, settings, database_url, stalls=4, restarts=1
    )
    assert (result.status, result.error_code) == ("error", "llm_failed")
    assert seen == [1, 2, 1, 2], "one restart, then the reply fails"
    assert len(stream_executions(history)) == 2
    assert ledger(database_url, result.reply_id) == {"reply-reserve": -50, "reply-release": 50}
    assert agent_messages(database_url, room_id) == []
