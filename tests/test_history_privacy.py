"""No message text, document, memory, name or e-mail in the workflow histories (DESIGN rule 2).

The test runs its own scenarios, so what it checks does not depend on which other tests ran
before it: agent replies (a cited reply, two agents, a hand-off chain, a failed reply, a
cancelled reply, auto-routing through the classifier), knowledge and memories added and
deleted, an invitation mailed and accepted by a new person, the referral that acceptance
starts and the first action that grants it, an invitation whose mail the SMTP server
refuses, a reply whose stored answer PostgreSQL refuses (a real database error quoting the
answer), and a conversation through the OpenAI-compatible endpoint. It then fetches every
history of those kinds and searches its raw bytes (payloads and failures included) for every
piece of content and identity PostgreSQL holds.

At the end of the session, `every_history_scanned_at_session_end` searches every workflow on
the session's Temporal server the same way, whatever test started it and whenever it ran
(the SIGKILLed-worker test, for instance, runs after this one).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable

import pytest
from temporalio.api.history.v1 import History
from temporalio.client import Client

from iaf.settings import Settings
from iaf.workflow_calls import (
    invitation_workflow_id,
    referral_workflow_id,
    reply_workflow_id,
    subject_ref,
)
from schemas.invitations import InvitationResult, ReferralOutcome
from tests.agent_helpers import ingest, reply_result, rows, temporal
from tests.helpers import Person, colleague, open_stream, signup, unique_email
from tests.smtp_capture import SmtpCapture, link_in
from tests.workers.db_faults import answers_refused

KINDS = ("route", "agent-reply", "ingest", "memory", "unindex", "invitation", "referral")
DOCUMENT = """Confidential rollout notes: the Falcon billing API moves to cursor pagination
and the Heron gateway terminates TLS. Structure the API around invoices and refunds."""
MEMORY = "I always want answers with a Kubernetes angle, says the Zebra team lead"
GUEST = "Guinevere Invitee-Subject"
PASSWORD = "correct horse battery"

# Every column holding what people wrote or who they are.
CONTENT_SQL = (
    "SELECT content FROM messages",
    "SELECT answer FROM agent_runs",
    "SELECT email FROM users",
    "SELECT name FROM users",
    "SELECT email FROM invitations",
    "SELECT name FROM orgs",
    "SELECT name FROM rooms",
    "SELECT topic FROM rooms",
    "SELECT content FROM knowledge_documents",
    "SELECT title FROM knowledge_documents",
    "SELECT content FROM memories",
    "SELECT email FROM erasure_targets",
    "SELECT name FROM erasure_targets",
)


async def run_agent_scenarios(
    client, settings, database_url, tc: Client
) -> tuple[Person, dict[str, str]]:
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
        cancel = await alice.post(f"/api/chat/rooms/{room['id']}/replies/{reply_id}/cancel")
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
    return alice, {"room": room["id"], "subject": subject_ref(settings, alice.id)}


async def run_invitation_scenarios(
    client, smtp: SmtpCapture, alice: Person, room_id: str, tc: Client
) -> list[str]:
    """An invitation accepted by a new person, whose first message grants the referral; an
    invitation whose recipient the SMTP server refuses. Returns the workflow ids."""
    guest_email = unique_email("guinevere")
    invited = await alice.post(f"/api/chat/rooms/{room_id}/invite", json={"email": guest_email})
    assert invited.status_code == 201, invited.text
    mail = await smtp.wait_for(lambda m: str(m["To"]) == guest_email)
    token = link_in(mail)[1]
    accepted = await client.post(
        f"/api/chat/invitations/{token}/accept", json={"name": GUEST, "password": PASSWORD}
    )
    assert accepted.status_code == 200, accepted.text
    guest = Person(client, accepted.json()["access_token"], accepted.json()["user"])
    invitation_id = invited.json()["id"]
    result = await tc.get_workflow_handle(
        invitation_workflow_id(invitation_id), result_type=InvitationResult
    ).result()
    assert result.status == "accepted" and result.referral_id is not None
    await guest.say(room_id, f"Hello from {GUEST}, glad to help with the Falcon launch")
    outcome = await asyncio.wait_for(
        tc.get_workflow_handle(
            referral_workflow_id(result.referral_id), result_type=ReferralOutcome
        ).result(),
        60,
    )
    assert outcome.status == "granted"

    refused_email = unique_email("refused-recipient")
    smtp.refused.add(refused_email.lower())
    refused = await alice.post(f"/api/chat/rooms/{room_id}/invite", json={"email": refused_email})
    assert refused.status_code == 201, refused.text
    refused_id = invitation_workflow_id(refused.json()["id"])
    for _ in range(300):  # the mail activity fails (non-retryable), the workflow waits on
        if b"RecipientRefused" in (await histories_of(tc, [refused_id]))[refused_id]:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the refused mail never failed its activity")
    revoked = await alice.delete(f"/api/chat/rooms/{room_id}/invitations/{refused.json()['id']}")
    assert revoked.status_code in (200, 204), revoked.text
    return [
        invitation_workflow_id(invitation_id),
        referral_workflow_id(result.referral_id),
        refused_id,
    ]


async def run_failure_and_openai_scenarios(
    client, alice: Person, room_id: str, database_url: str, tc: Client
) -> list[str]:
    """A reply whose answer PostgreSQL refuses (quoting it), and an OpenAI-API conversation."""
    marker = f"Pangolin{uuid.uuid4().hex[:10]}"
    with answers_refused(database_url, marker):
        message = await alice.say(room_id, f"@analyst what does {marker} cost us per month?")
        result = await reply_result(tc, message["id"], "analyst")
    assert result.status == "error"
    completion = await client.post(
        "/v1/chat/completions",
        headers=alice.headers,
        json={
            "model": "writer",
            "messages": [{"role": "user", "content": "Draft the Pelican release notes for Otto"}],
        },
    )
    assert completion.status_code == 200, completion.text
    answer = completion.json()["choices"][0]["message"]["content"]
    assert "Pelican release notes" in answer
    return [reply_workflow_id(message["id"], "analyst")]


def needles(database_url: str) -> set[str]:
    """Everything personal or written by people or agents that Postgres holds, long enough
    to be unambiguous."""
    found: set[str] = set()
    for sql in CONTENT_SQL:
        found |= {str(r[0]) for r in rows(database_url, sql) if r[0] and len(str(r[0])) >= 12}
    return found | {DOCUMENT, MEMORY, "Falcon rollout notes", "Ottoline Privacy-Subject", GUEST}


class NeedleIndex:
    """Finds any copy of a needle's text in a blob, also JSON-escaped, also truncated.

    Each text becomes probes: the whole text when short, else its 24-byte slices at offsets
    0, 24, 48 … (a copy of any 47 bytes of it contains one). A blob is read once: every
    12-byte window is looked up among the probes' first 12 bytes.
    """

    HEAD = 12
    PROBE = 24

    def __init__(self, texts: Iterable[str]) -> None:
        self.by_head: dict[bytes, set[bytes]] = defaultdict(set)
        for text in texts:
            for form in {text, json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1]}:
                data = form.encode()
                if len(data) < self.HEAD:
                    continue
                starts = range(0, max(1, len(data) - self.PROBE + 1), self.PROBE)
                for start in starts:
                    probe = data[start : start + self.PROBE]
                    self.by_head[probe[: self.HEAD]].add(probe)

    def find(self, blob: bytes) -> list[bytes]:
        hits: list[bytes] = []
        get = self.by_head.get
        head = self.HEAD
        for i in range(len(blob) - head + 1):
            probes = get(blob[i : i + head])
            if probes:
                hits += [p for p in probes if blob.startswith(p, i)]
        return hits


async def histories_of(tc: Client, workflow_ids: Iterable[str]) -> dict[str, bytes]:
    blobs: dict[str, bytes] = {}
    for workflow_id in workflow_ids:
        history = await tc.get_workflow_handle(workflow_id).fetch_history()
        blobs[workflow_id] = (
            History(events=history.events).SerializeToString() + history.to_json().encode()
        )
    return blobs


async def histories(tc: Client, query: str | None, concurrency: int = 8) -> dict[str, bytes]:
    """Every execution the query lists (all of them with None), as raw bytes and JSON."""
    executions = [(e.id, e.run_id) async for e in tc.list_workflows(query)]
    gate = asyncio.Semaphore(concurrency)

    async def one(workflow_id: str, run_id: str | None) -> tuple[str, bytes]:
        async with gate:
            history = await tc.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        blob = History(events=history.events).SerializeToString() + history.to_json().encode()
        return f"{workflow_id}@{run_id}", blob

    return dict(await asyncio.gather(*(one(w, r) for w, r in executions)))


def leaks(index: NeedleIndex, blobs: dict[str, bytes]) -> dict[str, list[bytes]]:
    return {key: hits[:3] for key, blob in blobs.items() if (hits := index.find(blob))}


@pytest.fixture(scope="session")
async def every_history_scanned_at_session_end(
    settings: Settings, database_url: str, temporal_server: object
) -> AsyncIterator[None]:
    """Teardown runs after the session's last test, while its Temporal server still runs."""
    yield
    tc = await temporal(settings)
    blobs = await histories(tc, None)
    found = leaks(NeedleIndex(needles(database_url)), blobs)
    assert not found, f"{len(found)} of {len(blobs)} histories hold content: {found}"


async def test_no_content_in_any_workflow_history(
    client, settings, database_url, smtp, every_history_scanned_at_session_end
):
    tc = await temporal(settings)
    alice, scope = await run_agent_scenarios(client, settings, database_url, tc)
    mine = await run_invitation_scenarios(client, smtp, alice, scope["room"], tc)
    mine += await run_failure_and_openai_scenarios(client, alice, scope["room"], database_url, tc)

    kinds = " OR ".join(f"Kind = '{k}'" for k in KINDS)
    expected_mine = {"route", "reply", "ingest", "memory", "unindex"}
    for _ in range(100):  # visibility is eventually consistent
        blobs = await histories(tc, f"({kinds})")
        subject = await histories(tc, f"SubjectRef = '{scope['subject']}'")
        listed = {key.split("@")[0] for key in blobs}
        if {w.split("-")[0] for w in subject} >= expected_mine and set(mine) <= listed:
            break
        await asyncio.sleep(0.2)
    assert {w.split("-")[0] for w in subject} >= expected_mine, sorted(subject)
    assert set(mine) <= {key.split("@")[0] for key in blobs}, "invitations, referral, failure"
    assert len(blobs) >= len(subject) >= 15
    in_room = await histories(tc, f"RoomId = '{scope['room']}'")
    assert any(w.startswith("reply-") for w in in_room) and any(
        w.startswith("route-") for w in in_room
    )
    searched = needles(database_url)
    assert any("Falcon" in n for n in searched) and any("@" in n for n in searched)
    assert any(GUEST in n for n in searched) and any("refused-recipient" in n for n in searched)
    assert any("Pangolin" in n for n in searched) and any("Pelican" in n for n in searched)
    for key, blob in blobs.items():
        if key.startswith("reply-"):
            assert key.split("@")[0].encode() in blob, "the scan reads the payloads it searches"
    assert b"RecipientRefused" in blobs[next(k for k in blobs if k.startswith(mine[2]))]
    found = leaks(NeedleIndex(searched), blobs)
    assert not found, f"histories hold content: {found}"


def test_needles_are_found_when_present() -> None:
    """The byte search finds text inside a serialised history (guards the check above)."""
    from temporalio.api.common.v1 import Payload, Payloads
    from temporalio.api.history.v1 import HistoryEvent, WorkflowExecutionStartedEventAttributes

    secret = f'secret {uuid.uuid4().hex} and a quote " and a line\nbreak, long enough'
    for data in (
        json.dumps({"text": secret}).encode(),  # JSON-escaped
        f"...{secret[30:80]}...".encode(),  # a truncated slice from the middle
        secret[:30].encode(),  # the opening words
    ):
        event = HistoryEvent(
            workflow_execution_started_event_attributes=WorkflowExecutionStartedEventAttributes(
                input=Payloads(payloads=[Payload(data=data)])
            )
        )
        blob = History(events=[event]).SerializeToString()
        assert NeedleIndex([secret]).find(blob), data
    assert not NeedleIndex([secret]).find(b"nothing of the kind here, only ids: route-12")
