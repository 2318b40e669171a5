"""Erasure against the real stack (PostgreSQL, Temporal dev server, embedded Qdrant), with
fault injection and retries; the grace timer's days-long wait on the time-skipping server."""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.gdpr_database import GdprDatabaseActivities
from iaf.db.repositories.erasure_scan import ErasureScanRepository
from iaf.db.repositories.erasure_targets import Targets
from iaf.db.repositories.room_events import EventRepository
from iaf.gdpr import faults, receipt
from iaf.gdpr.export_schema import validation_errors
from iaf.gdpr.scan import Needles
from iaf.mail.links import derive_token
from iaf.retrieval.store import KNOWLEDGE, MEMORIES, Indexed, VectorStore
from iaf.retrieval.vectors import VectorBackend, where
from iaf.security import pseudonym
from schemas.gdpr import (
    ERASURE_STEPS,
    CancelWorkflowsInput,
    ErasurePlan,
    ErasureResult,
    FinishErasureInput,
    GdprWorkflowInput,
    RetryConfig,
    StepInput,
    StepResult,
    VerificationPart,
)
from tests.gdpr_helpers import (
    PASSWORD,
    compliance_officer,
    db,
    execute,
    histories_mentioning,
    org_user,
    read_archive,
    scalar,
    wait_request,
)
from tests.helpers import Person, signup
from workflows.erasure import Erasure

VECTOR_SIZE = 384


def _vector(rng: random.Random) -> list[float]:
    return [rng.uniform(-1, 1) for _ in range(VECTOR_SIZE)]


async def add_points(vectors: VectorBackend, owner: Person, knowledge: int, memories: int) -> None:
    rng = random.Random(owner.id)
    store = VectorStore(vectors)
    await store.ensure(KNOWLEDGE, VECTOR_SIZE)
    await store.ensure(MEMORIES, VECTOR_SIZE)
    org = owner.user["org_id"]
    await store.upsert(
        KNOWLEDGE,
        [
            Indexed(
                str(uuid.uuid4()),
                _vector(rng),
                f"knowledge chunk {i}",
                {
                    "org_id": org,
                    "room_id": None,
                    "document_id": str(uuid.uuid4()),
                    "owner_id": owner.id,
                    "chunk": i,
                },
            )
            for i in range(knowledge)
        ],
    )
    await store.upsert(
        MEMORIES,
        [
            Indexed(
                str(uuid.uuid4()),
                _vector(rng),
                f"memory {i}",
                {"user_id": owner.id, "org_id": org, "memory_id": str(uuid.uuid4())},
            )
            for i in range(memories)
        ],
    )


async def owned_points(vectors: VectorBackend, user_id: str) -> dict[str, int]:
    return {
        collection: await vectors.count(collection, where(**{key: user_id}))
        for collection, key in (("knowledge", "owner_id"), ("memories", "user_id"))
    }


async def add_agent_data(settings, owner: Person, room_id: str) -> int:
    """Knowledge documents and memories rows, where the agents feature has created its tables."""
    added = 0
    async with db(settings) as session:
        from sqlalchemy import text

        if await session.scalar(
            text("SELECT to_regclass('public.knowledge_documents') IS NOT NULL")
        ):
            await session.execute(
                text(
                    "INSERT INTO knowledge_documents (id, org_id, room_id, owner_id, title,"
                    " content, scope, status)"
                    " VALUES (:id, :org, NULL, :owner, 'runbook', 'how we deploy', 'org', 'ready')"
                ),
                {"id": uuid.uuid4(), "org": owner.user["org_id"], "owner": owner.id},
            )
            added += 1
        if await session.scalar(text("SELECT to_regclass('public.memories') IS NOT NULL")):
            await session.execute(
                text(
                    "INSERT INTO memories (id, user_id, org_id, content) VALUES (:id, :uid, :org,"
                    " 'likes tea')"
                ),
                {"id": uuid.uuid4(), "uid": owner.id, "org": owner.user["org_id"]},
            )
            added += 1
        await session.commit()
    return added


async def wait_agent_runs(settings, user_id: str) -> None:
    """Until the agent replies the subject asked for are finished."""
    for _ in range(240):
        # One statement: counted separately, a run created between the two reads looked done.
        # A run is over once settled: `answer` is cleared and context reduced to references.
        started, open_runs = await scalar(
            settings,
            "SELECT ARRAY[count(*), count(*) FILTER (WHERE status NOT IN ('done', 'error',"
            " 'cancelled') OR answer IS NOT NULL)] FROM agent_runs WHERE requested_by = :uid",
            uid=uuid.UUID(user_id),
        )
        if started and not open_runs:
            return
        await asyncio.sleep(0.25)
    raise TimeoutError("agent reply did not finish")


@dataclass
class World:
    subject: Person
    bob: Person
    officer: Person
    shared_room: str
    private_room: str
    guest: Person | None = None
    name: str = ""
    email: str = ""
    archives: list[Path] = field(default_factory=list)


async def accept_as_guest(client, settings, inviter: Person, room_id: str, name: str) -> Person:
    email = f"guest-{uuid.uuid4().hex[:8]}@example.com"
    invited = await inviter.post(f"/api/chat/rooms/{room_id}/invite", json={"email": email})
    assert invited.status_code == 201, invited.text
    salt = await scalar(
        settings,
        "SELECT token_salt FROM invitations WHERE id = :id",
        id=uuid.UUID(invited.json()["id"]),
    )
    token = derive_token(settings.secret("invitation_secret"), salt)
    accepted = await client.post(
        f"/api/chat/invitations/{token}/accept", json={"name": name, "password": PASSWORD}
    )
    assert accepted.status_code == 200, accepted.text
    login = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    body = login.json()
    return Person(client, body["access_token"], body["user"])


async def build_world(client, settings, worker, label: str, with_guest: bool = False) -> World:
    """A subject with shared and private rooms, messages others saw, invitations, a referral,
    credits, consents, an API key, vectors and (where installed) knowledge and memories."""
    name = f"{label} Q{uuid.uuid4().hex[:6]}"
    subject = await signup(client, name)
    bob = await org_user(subject, f"Bob Keeper {uuid.uuid4().hex[:4]}")
    officer = await compliance_officer(subject)
    shared = await subject.new_room("shared", member_ids=[bob.id])
    private = await subject.new_room("only me")
    await subject.say(shared["id"], "hello from the subject")
    await subject.say(shared["id"], "second message, seen by bob")
    await bob.say(shared["id"], f"hi @{subject.user['handle']}, thanks {name}!")
    await bob.say(shared["id"], "bob's own note")
    await subject.say(private["id"], "my private notes")
    assert (
        await subject.put("/api/user/consents", json={"consents": {"analytics": True}})
    ).status_code == 200
    assert (await subject.post("/api/auth/api-keys", json={"name": "laptop"})).status_code == 201
    pending = await subject.post(
        f"/api/chat/rooms/{shared['id']}/invite",
        json={"email": f"later-{uuid.uuid4().hex[:6]}@example.com"},
    )
    assert pending.status_code == 201, pending.text
    guest = (
        await accept_as_guest(client, settings, subject, shared["id"], "Guest Carol")
        if with_guest
        else None
    )
    if guest is not None:
        await guest.say(shared["id"], "guest says hello")
        await subject.say(shared["id"], "@analyst please summarise this room")
        await wait_agent_runs(settings, subject.id)
    await add_points(worker.vectors, subject, knowledge=3, memories=2)
    await add_points(worker.vectors, bob, knowledge=2, memories=1)
    await add_agent_data(settings, subject, shared["id"])
    return World(
        subject, bob, officer, shared["id"], private["id"], guest, name, subject.user["email"]
    )


@dataclass
class Bystanders:
    """People the erasure must leave alone although they resemble the subject."""

    joann: Person  # her address ends with the subject's: jo + subject@example.com
    longer: Person  # the subject's address with a longer domain: subject@example.com.au
    namesake: Person  # same name, same org (her handle gets a suffix)
    elsewhere: Person  # same name, another org, talking about herself in her own room
    reply_id: str  # an agent reply in the subject's room, streamed across several deltas


async def add_bystanders(client, settings, world: World) -> Bystanders:
    subject = world.subject
    joann = await org_user(subject, "Joann Lookalike", email="jo" + world.email)
    longer = await org_user(subject, "Longer Domain", email=world.email + ".au")
    namesake = await org_user(subject, world.name)
    elsewhere = await signup(client, world.name)
    assert namesake.user["handle"] != subject.user["handle"]
    for person in (joann, namesake):
        added = await subject.post(
            f"/api/chat/rooms/{world.shared_room}/members", json={"user_id": person.id}
        )
        assert added.status_code in (200, 201), added.text
    await joann.say(world.shared_room, f"joann here, write to {joann.user['email']}")
    await world.bob.say(
        world.shared_room,
        f"cc {joann.user['email']}, {longer.user['email']} and {world.email}.",
    )
    await world.bob.say(world.shared_room, f"@{namesake.user['handle']} welcome")
    own = await elsewhere.new_room("my own room")
    await elsewhere.say(own["id"], f"I am {world.name}, nobody else")
    # A reply someone else's agent streamed in the subject's room: the name spans two deltas.
    name = world.name
    reply_id = f"reply-{uuid.uuid4().hex[:8]}-scribe"
    room = uuid.UUID(world.shared_room)
    async with db(settings) as session:
        events = EventRepository(session)
        base = {"reply_id": reply_id, "agent_id": "scribe"}
        await events.append(room, "agent.start", {**base, "message_id": 1, "agent_name": "Scribe"})
        for seq, piece in enumerate(("Thanks ", name[:4], name[4:], " for the notes")):
            await events.append(
                room, "agent.delta", {**base, "seq": seq, "attempt": 1, "text": piece}
            )
        await events.append(room, "agent.done", {**base, "message_id": None})
        await session.commit()
    return Bystanders(joann, longer, namesake, elsewhere, reply_id)


async def check_bystanders_kept(client, settings, world: World, others: Bystanders) -> None:
    history = (await world.bob.get(f"/api/chat/rooms/{world.shared_room}/messages")).json()
    contents = [m["content"] for m in history["items"]]
    joann_email, longer_email = others.joann.user["email"], others.longer.user["email"]
    assert f"joann here, write to {joann_email}" in contents
    assert f"cc {joann_email}, {longer_email} and [erased]." in contents
    assert f"@{others.namesake.user['handle']} welcome" in contents
    for person in (others.joann, others.longer, others.namesake, others.elsewhere):
        me = await person.get("/api/me")
        assert me.status_code == 200 and me.json()["email"] == person.user["email"]
        assert me.json()["name"] == person.user["name"]
        login = await client.post(
            "/api/auth/login", json={"email": person.user["email"], "password": PASSWORD}
        )
        assert login.status_code == 200, login.text
    # Their rate-limit counters (keyed by address) were not the subject's to delete.
    assert await scalar(
        settings,
        "SELECT count(*) FROM rate_limit_counters WHERE bucket LIKE 'login@%' AND"
        " substr(bucket, strpos(bucket, ':') + 1) = :e",  # per account and client address
        e=joann_email.lower(),
    )
    deltas = await scalar(
        settings,
        "SELECT count(*) FROM room_events WHERE type = 'agent.delta' AND data ->> 'reply_id' = :r",
        r=others.reply_id,
    )
    assert deltas == 0


async def submit(officer: Person, kind: str, subject: Person, **extra) -> dict[str, Any]:
    response = await officer.post(
        "/api/compliance/requests",
        json={"kind": kind, "subjects": [{"user_id": subject.id}], "reason": "ticket 42", **extra},
    )
    assert response.status_code == 201, response.text
    item = response.json()["items"][0]
    assert item["outcome"] == "created"
    return dict(item["request"])


def targets_of(world: World) -> Targets:
    return Targets(
        user_id=uuid.UUID(world.subject.id),
        org_id=uuid.UUID(world.subject.user["org_id"]),
        email=world.email,
        name=world.name,
        handle=world.subject.user["handle"],
        account_created_at=datetime.now(UTC),
        room_ids=[],
    )


async def assert_no_traces(settings, worker, world: World) -> None:
    async with db(settings) as session:
        checked, findings, _ = await ErasureScanRepository(session).scan(targets_of(world))
    assert checked > 50 and findings == []
    assert await owned_points(worker.vectors, world.subject.id) == {"knowledge": 0, "memories": 0}
    needles = Needles.of(world.email, world.name, world.subject.id)
    assert await histories_mentioning(worker.temporal, needles) == {}


async def test_export_then_erase_leaves_no_trace_and_keeps_everyone_else(client, settings, worker):
    world = await build_world(client, settings, worker, "Alice Subject", with_guest=True)
    guest = world.guest
    assert guest is not None
    others = await add_bystanders(client, settings, world)
    bob_credits = (await world.bob.get("/api/credits")).json()
    guest_credits = (await guest.get("/api/credits")).json()

    export = await submit(world.officer, "export", world.subject)
    exported = await wait_request(world.officer, export["id"], ("complete", "error"))
    assert exported["status"] == "complete", exported
    archive = await world.officer.get(f"/api/compliance/requests/{export['id']}/archive")
    document, files = read_archive(archive.content)
    assert validation_errors(document) == []
    sections = document["sections"]
    assert document["subject"]["email"] == world.email
    assert {m["content"] for m in sections["messages"]} >= {
        "hello from the subject",
        "my private notes",
    }
    assert len(sections["invitations_sent"]) == 2 and sections["referrals"][0]["role"] == "referrer"
    assert sections["ledger_entries"] and document["ledger_balance"] > 0
    assert [c["purpose"] for c in sections["consents"]] == ["analytics"]
    assert document["unavailable_sections"] == []
    assert [k["title"] for k in sections["knowledge_documents"]] == ["runbook"]
    assert [m["content"] for m in sections["memories"]] == ["likes tea"]
    assert [r["agent_id"] for r in sections["agent_runs"]] == ["analyst"]
    assert len(sections["mentions_of_you"]) == 1 and "content" not in sections["mentions_of_you"][0]
    assert b"bob's own note" not in b"".join(files.values())
    assert "csv/messages.csv" in files and document["information"]["retention"]
    archive_file = settings.data_dir / "exports" / f"{export['id']}.zip"
    assert archive_file.exists()
    # What an interrupted write of the subject's archive leaves behind goes too.
    partial_file = archive_file.with_suffix(".partial")
    partial_file.write_bytes(archive_file.read_bytes()[:200])
    invitation_workflows = [
        f"invitation-{i}"
        for i in (
            await scalar(
                settings,
                "SELECT array_agg(id) FROM invitations WHERE invited_by = :uid",
                uid=uuid.UUID(world.subject.id),
            )
        )
    ]
    assert len(invitation_workflows) == 2
    # Before any erasure: no history of the scenario carries the subject's e-mail or name.
    assert (
        await histories_mentioning(
            worker.temporal, Needles.of(world.email, world.name, "no-id-check")
        )
        == {}
    )

    erasure = await submit(world.officer, "erasure", world.subject, grace_days=0)
    done = await wait_request(world.officer, erasure["id"], ("complete", "error"), patience=120)
    assert done["status"] == "complete", (
        done["failed_step"],
        done["verification"],
        [(s["step"], s["status"], s["last_error"]) for s in done["steps"]],
    )
    assert done["verification"]["clean"] is True and done["subject_user_id"] is None
    assert all(s["status"] == "done" for s in done["steps"]), done["steps"]
    # Namesakes are not traces: counted for review (users.name, their org, their own words).
    review = {(r["location"], r["needle"]) for r in done["verification"]["review"]}
    assert {("postgres:users.name", "name"), ("postgres:messages.content", "name")} <= review
    assert "exports" in done["verification"]["checked"]
    assert (
        await scalar(
            settings,
            "SELECT count(*) FROM erasure_targets WHERE request_id = :id",
            id=uuid.UUID(erasure["id"]),
        )
        == 0
    )
    receipt_out = (
        await world.officer.get(f"/api/compliance/requests/{erasure['id']}/receipt")
    ).json()
    assert receipt_out["valid"] is True
    assert receipt.verify(
        settings.secret("erasure_receipt_secret"), receipt_out["receipt"], receipt_out["signature"]
    )
    forged = {**receipt_out["receipt"], "subject_ref": "someone else"}
    assert not receipt.verify(
        settings.secret("erasure_receipt_secret"), forged, receipt_out["signature"]
    )
    assert receipt_out["receipt"]["subject_ref"] == pseudonym(
        settings.secret("pseudonym_secret"), world.subject.id
    )

    await assert_no_traces(settings, worker, world)
    assert not archive_file.exists() and not partial_file.exists()
    # The subject's invitation workflows (started without SubjectRef) are deleted, not kept.
    for workflow_id in invitation_workflows:
        with pytest.raises(RPCError):
            await worker.temporal.get_workflow_handle(workflow_id).describe()
    await check_bystanders_kept(client, settings, world, others)
    assert (
        await scalar(
            settings, "SELECT count(*) FROM rooms WHERE id = :id", id=uuid.UUID(world.private_room)
        )
        == 0
    )

    # The subject is gone: no login, no old token, no API key.
    login = await client.post("/api/auth/login", json={"email": world.email, "password": PASSWORD})
    assert login.status_code == 401 and (await world.subject.get("/api/me")).status_code == 401

    # Everyone else's data is intact and readable.
    history = (await world.bob.get(f"/api/chat/rooms/{world.shared_room}/messages")).json()["items"]
    by_sender = [(m["sender_user_id"], m["content"]) for m in history if m["type"] == "text"]
    assert (world.bob.id, "bob's own note") in by_sender
    # The @handle is the subject's exactly; the name is also a colleague's (the namesake in
    # the room): Bob may have meant either, so his words keep it and it is for review.
    assert (world.bob.id, f"hi @erased, thanks {world.name}!") in by_sender
    assert (guest.id, "guest says hello") in by_sender
    erased = [c for sender, c in by_sender if sender is None]
    assert len(erased) == 3 and all(c.startswith("[message removed") for c in erased)
    assert (await guest.get(f"/api/chat/rooms/{world.shared_room}/messages")).status_code == 200
    assert (await world.bob.get("/api/credits")).json()["balance"] == bob_credits["balance"]
    assert (await guest.get("/api/credits")).json()["balance"] == guest_credits["balance"]
    assert await owned_points(worker.vectors, world.bob.id) == {"knowledge": 2, "memories": 1}
    assert (await world.bob.get("/api/me")).status_code == 200


async def test_keep_policy_keeps_shared_text_without_its_author(
    client, settings, worker, monkeypatch
):
    monkeypatch.setattr(settings, "anonymise_policy", "keep")
    world = await build_world(client, settings, worker, "Kim Keeper")
    await world.subject.say(world.shared_room, f"signed, {world.name}")
    erasure = await submit(world.officer, "erasure", world.subject, grace_days=0)
    done = await wait_request(world.officer, erasure["id"], ("complete", "error"), patience=120)
    assert done["status"] == "complete", (done["failed_step"], done["verification"])
    history = (await world.bob.get(f"/api/chat/rooms/{world.shared_room}/messages")).json()["items"]
    kept = [
        (m["sender_user_id"], m["sender_name"], m["content"])
        for m in history
        if m["type"] == "text" and m["sender_user_id"] != world.bob.id
    ]
    # The words stay (without author, and without the name they may contain); no tombstone.
    assert kept == [
        (None, None, "hello from the subject"),
        (None, None, "second message, seen by bob"),
        (None, None, "signed, [erased]"),
    ]
    events = await scalar(
        settings,
        "SELECT array_agg(data ->> 'content' ORDER BY id) FROM room_events WHERE room_id = :room"
        " AND type = 'message.new' AND data ->> 'sender_user_id' IS NULL",
        room=uuid.UUID(world.shared_room),
    )
    assert events == [c for _, _, c in kept]
    await assert_no_traces(settings, worker, world)


async def test_each_store_failing_twice_still_completes(client, settings, worker, monkeypatch):
    monkeypatch.setattr(settings, "gdpr_retry_initial_seconds", 0.1)
    world = await build_world(client, settings, worker, "Fran Flaky")
    erasure = await submit(world.officer, "erasure", world.subject, grace_days=0)
    for step in ERASURE_STEPS[1:]:
        faults.inject(erasure["id"], step, failures=2)
    try:
        done = await wait_request(world.officer, erasure["id"], ("complete", "error"), patience=180)
    finally:
        faults.clear(erasure["id"])
    assert done["status"] == "complete", (
        done["failed_step"],
        done["verification"],
        [(s["step"], s["status"], s["last_error"]) for s in done["steps"]],
    )
    attempts = {s["step"]: s["attempts"] for s in done["steps"]}
    assert all(attempts[step] >= 3 for step in ERASURE_STEPS[1:]), attempts
    assert attempts["anonymise"] == 3 and attempts["delete_vectors"] == 3
    await assert_no_traces(settings, worker, world)


async def test_permanent_failure_then_retry_resumes_from_the_failed_step(client, settings, worker):
    world = await build_world(client, settings, worker, "Gus Stuck")
    erasure = await submit(world.officer, "erasure", world.subject, grace_days=0)
    faults.inject(erasure["id"], "delete_vectors", permanent=True)
    try:
        failed = await wait_request(world.officer, erasure["id"], ("complete", "error"))
    finally:
        faults.clear(erasure["id"])
    assert failed["status"] == "error" and failed["failed_step"] == "delete_vectors"
    before = {s["step"]: (s["status"], s["attempts"]) for s in failed["steps"]}
    assert [s for s in ERASURE_STEPS if before[s][0] == "done"] == [
        "grace",
        "freeze",
        "anonymise",
        "delete_private",
    ]
    assert before["delete_vectors"] == ("error", 1)
    handle = worker.temporal.get_workflow_handle(erasure["workflow_id"])
    with pytest.raises(WorkflowFailureError):  # it records the failed step, then fails
        await handle.result()
    description = await handle.describe()
    assert description.status == WorkflowExecutionStatus.FAILED
    assert await owned_points(worker.vectors, world.subject.id) == {"knowledge": 3, "memories": 2}

    skipping = await world.officer.post(
        f"/api/compliance/requests/{erasure['id']}/retry", json={"from_step": "audit"}
    )
    assert skipping.status_code == 422
    retried = await world.officer.post(f"/api/compliance/requests/{erasure['id']}/retry", json={})
    assert retried.status_code == 202, retried.text
    done = await wait_request(world.officer, erasure["id"], ("complete", "error"), patience=120)
    assert done["status"] == "complete", (
        done["failed_step"],
        done["verification"],
        [(s["step"], s["status"], s["last_error"]) for s in done["steps"]],
    )
    after = {s["step"]: (s["status"], s["attempts"]) for s in done["steps"]}
    assert all(after[s] == before[s] for s in ("freeze", "anonymise", "delete_private"))
    assert after["delete_vectors"] == ("done", 2)
    again = await world.officer.post(f"/api/compliance/requests/{erasure['id']}/retry", json={})
    assert again.status_code == 409
    await assert_no_traces(settings, worker, world)


def _visible(message: dict) -> tuple:
    keys = ("id", "sender_user_id", "sender_agent_id", "sender_name", "content", "deleted_at")
    return tuple(message[k] for k in keys)


async def test_cancelling_during_grace_keeps_everything(client, settings, worker):
    world = await build_world(client, settings, worker, "Hana Hesitant")
    before = (await world.bob.get(f"/api/chat/rooms/{world.shared_room}/messages")).json()["items"]
    scheduled = await world.subject.post("/api/user/delete-account", json={"password": PASSWORD})
    assert scheduled.status_code == 202 and scheduled.json()["status"] == "in_grace"
    cancelled = await world.subject.post("/api/user/delete-account/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    handle = worker.temporal.get_workflow_handle(
        scheduled.json()["workflow_id"], result_type=ErasureResult
    )
    assert (await handle.result()).status == "cancelled"

    after = (await world.bob.get(f"/api/chat/rooms/{world.shared_room}/messages")).json()["items"]
    # RouteMessage may record mentions into a message after `before` was read: compare content.
    assert [_visible(m) for m in after] == [_visible(m) for m in before]
    assert (await world.subject.get("/api/me")).json()["email"] == world.email
    login = await client.post("/api/auth/login", json={"email": world.email, "password": PASSWORD})
    assert login.status_code == 200
    assert await owned_points(worker.vectors, world.subject.id) == {"knowledge": 3, "memories": 2}
    steps = {s["step"]: s["status"] for s in cancelled.json()["steps"]}
    assert steps["grace"] == "skipped" and steps["freeze"] == "pending"
    assert (
        await execute(
            settings,
            "UPDATE users SET status = status WHERE id = :id AND status = 'active'",
            id=uuid.UUID(world.subject.id),
        )
        == 1
    )


async def test_no_step_touches_a_cancelled_request(client, settings, worker):
    """A plan read while the subject cancelled could see the grace step skipped: the steps
    themselves refuse to run unless the request is in progress."""
    world = await build_world(client, settings, worker, "Ivy Undecided")
    scheduled = await world.subject.post("/api/user/delete-account", json={"password": PASSWORD})
    cancelled = await world.subject.post("/api/user/delete-account/cancel")
    assert cancelled.json()["status"] == "cancelled"
    activities = GdprDatabaseActivities(worker.sessionmaker, settings)
    step = StepInput(request_id=scheduled.json()["id"], step="freeze")
    with pytest.raises(ApplicationError) as refused:
        await activities.freeze(step)
    assert refused.value.type == "NotInProgress" and refused.value.non_retryable
    assert (await world.subject.get("/api/me")).status_code == 200
    plan = await activities.erasure_plan(GdprWorkflowInput(request_id=scheduled.json()["id"]))
    assert plan.status == "cancelled"


# --- the grace timer on the time-skipping server --------------------------------------------------

TEST_SERVER = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "temporal-test-server"


class FakeSteps:
    """Same activity names as the real ones; records which steps ran."""

    def __init__(self, grace_seconds: float, done: list[str] | None = None) -> None:
        self.grace_seconds = grace_seconds
        self.done = done or []
        self.ran: list[str] = []

    @activity.defn(name="gdpr_erasure_plan")
    async def plan(self, input: GdprWorkflowInput) -> ErasurePlan:
        return ErasurePlan(
            status="in_grace",
            done_steps=self.done,
            grace_seconds=self.grace_seconds,
            retry=RetryConfig(initial_seconds=1, maximum_attempts=3),
            retrieval_task_queue="ts",
        )

    @activity.defn(name="gdpr_erasure_begin")
    async def begin(self, input: GdprWorkflowInput) -> str:
        self.ran.append("begin")
        return "in_progress"

    @activity.defn(name="gdpr_mark_cancelled")
    async def cancelled(self, input: GdprWorkflowInput) -> str:
        self.ran.append("cancelled")
        return "cancelled"

    def activities(self) -> list[Any]:
        def step(name: str):
            @activity.defn(name=name)
            async def run(input: StepInput) -> StepResult:
                self.ran.append(name)
                return StepResult(step=input.step)

            return run

        @activity.defn(name="gdpr_cancel_workflows")
        async def cancel_workflows(input: CancelWorkflowsInput) -> StepResult:
            self.ran.append("cancel_workflows")
            return StepResult(step="freeze")

        def verify(name: str, store: str):
            @activity.defn(name=name)
            async def run(input: StepInput) -> VerificationPart:
                self.ran.append(name)
                return VerificationPart.model_validate(
                    {"store": store, "checked": 1, "findings": []}
                )

            return run

        @activity.defn(name="gdpr_finish_erasure")
        async def finish(input: FinishErasureInput) -> ErasureResult:
            self.ran.append("finish")
            return ErasureResult(request_id=input.request_id, status="complete", clean=True)

        steps = [
            "gdpr_freeze",
            "gdpr_anonymise",
            "gdpr_delete_private",
            "gdpr_delete_vectors",
            "gdpr_delete_workflows",
            "gdpr_delete_account",
            "gdpr_audit",
        ]
        return [
            self.plan,
            self.begin,
            self.cancelled,
            cancel_workflows,
            finish,
            *(step(n) for n in steps),
            verify("gdpr_verify_postgres", "postgres"),
            verify("gdpr_verify_qdrant", "qdrant"),
            verify("gdpr_verify_temporal", "temporal"),
            verify("gdpr_verify_exports", "exports"),
            verify("gdpr_verify_files", "files"),
        ]


async def _run_time_skipping(
    fakes: FakeSteps, cancel_after: timedelta | None
) -> tuple[ErasureResult, timedelta]:
    async with await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(TEST_SERVER), data_converter=pydantic_data_converter
    ) as env:
        activities = fakes.activities()
        async with Worker(env.client, task_queue="ts", workflows=[Erasure], activities=activities):
            started = await env.get_current_time()
            handle = await env.client.start_workflow(
                Erasure.run,
                GdprWorkflowInput(request_id="r-1"),
                id=f"erasure-{uuid.uuid4()}",
                task_queue="ts",
            )
            if cancel_after is not None:
                await env.sleep(cancel_after)
                await handle.signal(Erasure.cancel)
            result = await handle.result()
            return result, (await env.get_current_time()) - started


async def test_grace_period_is_a_durable_timer_of_days():
    fakes = FakeSteps(grace_seconds=timedelta(days=7).total_seconds())
    result, elapsed = await _run_time_skipping(fakes, cancel_after=None)
    assert result.status == "complete"
    assert elapsed >= timedelta(days=7)
    assert fakes.ran[:3] == ["begin", "gdpr_freeze", "cancel_workflows"]
    assert "gdpr_delete_account" in fakes.ran and fakes.ran[-1] == "finish"


async def test_signal_during_grace_cancels_before_any_step():
    fakes = FakeSteps(grace_seconds=timedelta(days=7).total_seconds())
    result, _ = await _run_time_skipping(fakes, cancel_after=timedelta(days=2))
    assert result.status == "cancelled" and fakes.ran == ["cancelled"]


async def test_a_new_run_skips_the_steps_already_done():
    done = ["grace", "freeze", "anonymise", "delete_private"]
    fakes = FakeSteps(grace_seconds=0, done=done)
    result, _ = await _run_time_skipping(fakes, cancel_after=None)
    assert result.status == "complete"
    assert fakes.ran[0] == "gdpr_delete_vectors"
    assert not {"begin", "gdpr_freeze", "gdpr_anonymise", "gdpr_delete_private"} & set(fakes.ran)
