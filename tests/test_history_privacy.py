"""No message text, document, memory, name or e-mail in the workflow histories (DESIGN rule 2).

Runs the agent scenarios (a cited reply, two agents, a hand-off chain, a failed reply, a
cancelled reply, auto-routing through the classifier, knowledge and memories added and
deleted), then lists every RouteMessage, AgentReply and knowledge workflow on the server —
including those of the other tests of this session — fetches each history and searches its
raw bytes (payloads included) for every piece of content and identity stored in Postgres.
"""

from __future__ import annotations

import asyncio
import uuid

from temporalio.api.history.v1 import History
from temporalio.client import Client

from iaf.agents.launch import subject_ref
from iaf.schemas.agents import reply_workflow_id
from tests.agent_helpers import ingest, reply_result, rows, temporal
from tests.helpers import colleague, open_stream, signup

KINDS = ("route", "agent-reply", "ingest", "memory", "unindex")
DOCUMENT = """Confidential rollout notes: the Falcon billing API moves to cursor pagination
and the Heron gateway terminates TLS. Structure the API around invoices and refunds."""
MEMORY = "I always want answers with a Kubernetes angle, says the Zebra team lead"


async def run_scenarios(client, settings, database_url, tc: Client) -> dict[str, str]:
    alice = await signup(client, "Ottoline Privacy-Subject")
    bob = await colleague(alice, "Bartholomew Second-Person")
    room = await alice.new_room("privacy", member_ids=[bob.id])
    auto_room = await alice.new_room("auto", auto_route=True)
    document = await ingest(alice, "Falcon rollout notes", DOCUMENT, "room", room["id"])
    await ingest(alice, "Heron org handbook", DOCUMENT.replace("Falcon", "Osprey"), "org")
    memory = await alice.post("/api/memories", json={"content": MEMORY})
    assert memory.status_code == 201
    await asyncio.sleep(1.0)

    asked = await alice.say(room["id"], "@architect how should we structure the Falcon API?")
    both = await alice.say(room["id"], f"@architect @developer @{bob.user['handle']} review it")
    chain = await alice.say(
        room["id"], "@architect please `ask @developer to ask @tester to ask @writer` now"
    )
    failing = await alice.say(room["id"], "@pm plan the Falcon launch [offline: fail-after=1]")
    routed = await alice.say(auto_room["id"], "should we test the design?")
    async with open_stream(client, alice, room["id"]) as stream:
        slow = await alice.say(room["id"], "@security audit the Falcon API [offline: slow=5]")
        reply_id = reply_workflow_id(slow["id"], "security")
        await stream.wait_for(lambda e: e.event == "agent.delta" and e.data["reply_id"] == reply_id)
        cancel = await bob.post(f"/api/chat/rooms/{room['id']}/replies/{reply_id}/cancel")
        assert cancel.status_code == 202
        await stream.wait_for(lambda e: e.event == "agent.error" and e.data["reply_id"] == reply_id)

    for message, agent in (
        (asked, "architect"),
        (both, "architect"),
        (both, "developer"),
        (routed, "architect"),
    ):
        assert (await reply_result(tc, message["id"], agent)).status == "done"
    assert (await reply_result(tc, failing["id"], "pm")).status == "error"
    step = await reply_result(tc, chain["id"], "architect")
    while step.handed_off_to:
        step = await reply_result(tc, step.reply_message_id or 0, step.handed_off_to)

    gone = await alice.delete(f"/api/knowledge/documents/{document['id']}")
    assert gone.status_code == 202
    await alice.delete(f"/api/memories/{memory.json()['id']}")
    for _ in range(300):
        if not rows(database_url, "SELECT 1 FROM memories WHERE id = %s", memory.json()["id"]):
            break
        await asyncio.sleep(0.1)
    return {"room": room["id"], "subject": subject_ref(settings, alice.id)}


def needles(database_url: str) -> set[str]:
    """Everything personal or written by people or agents that Postgres holds, long enough
    to be unambiguous."""
    found: set[str] = set()
    for sql in (
        "SELECT content FROM messages",
        "SELECT email FROM users",
        "SELECT name FROM users",
        "SELECT content FROM knowledge_documents",
        "SELECT title FROM knowledge_documents",
        "SELECT content FROM memories",
    ):
        found |= {str(r[0]) for r in rows(database_url, sql) if r[0] and len(str(r[0])) >= 12}
    found |= {DOCUMENT, MEMORY, "Falcon rollout notes", "Ottoline Privacy-Subject"}
    # A truncated copy leaks too: look for each text's opening words as well.
    return found | {text[:24] for text in found if len(text) >= 24}


async def histories(tc: Client, query: str) -> dict[str, bytes]:
    blobs: dict[str, bytes] = {}
    async for execution in tc.list_workflows(query):
        history = await tc.get_workflow_handle(
            execution.id, run_id=execution.run_id
        ).fetch_history()
        blob = History(events=history.events).SerializeToString()
        blobs[execution.id] = blob + history.to_json().encode()
    return blobs


async def test_no_content_in_any_workflow_history(client, settings, database_url):
    tc = await temporal(settings)
    scope = await run_scenarios(client, settings, database_url, tc)
    kinds = " OR ".join(f"Kind = '{k}'" for k in KINDS)
    expected_mine = {"route", "reply", "ingest", "memory", "unindex"}
    for _ in range(100):  # visibility is eventually consistent
        blobs = await histories(tc, f"({kinds})")
        subject = await histories(tc, f"SubjectRef = '{scope['subject']}'")
        if {wid.split("-")[0] for wid in subject} >= expected_mine:
            break
        await asyncio.sleep(0.2)
    assert {wid.split("-")[0] for wid in subject} >= expected_mine, sorted(subject)
    assert len(blobs) >= len(subject) >= 15
    in_room = await histories(tc, f"RoomId = '{scope['room']}'")
    assert any(w.startswith("reply-") for w in in_room) and any(
        w.startswith("route-") for w in in_room
    )
    searched = needles(database_url)
    assert any("Falcon" in n for n in searched) and any("@" in n for n in searched)
    for workflow_id, blob in blobs.items():
        if workflow_id.startswith("reply-"):
            assert workflow_id.encode() in blob, "the scan reads the payloads it searches"
        leaked = [n for n in searched if n.encode() in blob]
        assert not leaked, f"{workflow_id} history holds {leaked[:3]}"


def test_needles_are_found_when_present() -> None:
    """The byte search finds text inside a serialised history (guards the check above)."""
    from temporalio.api.common.v1 import Payload, Payloads
    from temporalio.api.history.v1 import HistoryEvent, WorkflowExecutionStartedEventAttributes

    secret = f"secret {uuid.uuid4().hex}"
    event = HistoryEvent(
        workflow_execution_started_event_attributes=WorkflowExecutionStartedEventAttributes(
            input=Payloads(payloads=[Payload(data=f'{{"text": "{secret}"}}'.encode())])
        )
    )
    assert secret.encode() in History(events=[event]).SerializeToString()
