"""Rule 5: a message stored while Temporal is away is routed once Temporal is back.

The outage test is the real thing: a Temporal dev server on a fixed port with its SQLite
file, the API and a worker with the default sweep interval; Temporal stops while both run,
a message is posted (201, promptly), Temporal comes back on the same port and file, and the
sweep starts the message's RouteMessage. The other tests drive one sweep round at a time
against their own Temporal server: failed and terminated runs are started again, completed
ones marked routed, and messages whose runs are stuck never hold up newer ones.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from iaf.db.engine import make_engine, make_sessionmaker
from iaf.db.migrate import upgrade
from iaf.db.repositories.messages import MessageRepository
from iaf.db.repositories.rooms import RoomRepository
from iaf.db.repositories.users import UserRepository
from iaf.devstack.postgres import EmbeddedPostgres
from iaf.devstack.temporal import TemporalDevServer
from iaf.settings import Settings
from iaf.temporal_client import StartGuard, TemporalUnavailable, connect, start_guard
from iaf.workflow_calls import route_workflow_id, start_route_message
from schemas.workflows import RouteMessageInput
from tests.conftest import make_settings
from tests.helpers import free_port, serve_api, signup, unique_email
from workers.main import running_worker
from workers.sweep import UnroutedSweep

DEFAULTS = Settings.model_fields


def _routing_state(database_url: str, message_id: int) -> tuple[object, object]:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT routed_at, metadata FROM messages WHERE id = %s", (message_id,)
        ).fetchone()
    assert row is not None
    return row[0], row[1]


def own_database(postgres: EmbeddedPostgres, name: str) -> str:
    """A database of its own, so no other test's worker can route these messages."""
    postgres.ensure_database(name)
    url = postgres.url(name)
    upgrade(url)
    return url


async def test_posting_while_temporal_is_stopped_then_routed_after_it_returns(data_dir, postgres):
    database_url = await asyncio.to_thread(own_database, postgres, "iaf_sweep")
    temporal = TemporalDevServer(free_port(), None, db_file=data_dir / "sweep-temporal.sqlite")
    settings = make_settings(
        data_dir, database_url, temporal.address, temporal_task_queue="iaf-sweep-test"
    )
    async with serve_api(settings) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        alice = await signup(client)
        room = await alice.new_room()
        response = await alice.post(
            f"/api/chat/rooms/{room['id']}/messages", json={"content": "@architect are you there?"}
        )
        assert response.status_code == 201
        message_id = response.json()["id"]
        assert _routing_state(database_url, message_id)[0] is None
        health = (await client.get("/healthz")).json()
        assert health["checks"]["temporal"]["status"] == "down"

        temporal.start()
        try:
            # The session's worker owns the local Qdrant path; this one needs no retrieval.
            async with running_worker(settings, serve_retrieval=False):
                for _ in range(300):
                    routed_at, metadata = _routing_state(database_url, message_id)
                    if routed_at is not None:
                        break
                    await asyncio.sleep(0.1)
            assert routed_at is not None, "the sweep started RouteMessage after Temporal came back"
            assert metadata["mentions"][0]["kind"] == "agent"
            assert metadata["mentions"][0]["id"] == "architect"
        finally:
            temporal.stop()


async def post_timed(person, room_id: str, content: str) -> tuple[int, float]:
    started = time.monotonic()
    response = await person.post(f"/api/chat/rooms/{room_id}/messages", json={"content": content})
    assert response.status_code == 201, response.text
    return int(response.json()["id"]), time.monotonic() - started


async def test_temporal_stops_and_returns_under_a_running_api_and_worker(
    data_dir, postgres, tmp_path: Path
):
    """Default sweep interval and start timeouts (Settings), a real stop and restart."""
    assert DEFAULTS["sweep_interval_seconds"].default == 10.0
    database_url = await asyncio.to_thread(own_database, postgres, "iaf_outage")
    temporal = TemporalDevServer(
        free_port(), None, db_file=tmp_path / "temporal.sqlite", log_file=tmp_path / "t.log"
    )
    settings = make_settings(
        data_dir,
        database_url,
        temporal.address,
        temporal_task_queue="iaf-outage-test",
        temporal_retrieval_task_queue="iaf-outage-test-retrieval",
        qdrant_path=tmp_path / "qdrant",
        sweep_interval_seconds=DEFAULTS["sweep_interval_seconds"].default,
        sweep_min_age_seconds=DEFAULTS["sweep_min_age_seconds"].default,
        temporal_start_timeout_seconds=DEFAULTS["temporal_start_timeout_seconds"].default,
    )
    temporal.start()
    try:
        async with (
            running_worker(settings, serve_retrieval=False),
            serve_api(settings) as url,
            httpx.AsyncClient(base_url=url, timeout=30) as client,
        ):
            alice = await signup(client, "Olive Outage")
            bob_email = unique_email("bob")
            added = await alice.post(
                "/api/org/users",
                json={
                    "email": bob_email,
                    "name": "Bob Outage",
                    "password": "correct horse battery",
                },
            )
            assert added.status_code == 201, added.text
            bob = added.json()
            room = await alice.new_room("outage", member_ids=[bob["id"]])
            first, _ = await post_timed(alice, room["id"], f"@{bob['handle']} before the outage")
            for _ in range(100):
                if _routing_state(database_url, first)[0] is not None:
                    break
                await asyncio.sleep(0.1)
            assert _routing_state(database_url, first)[0] is not None, "routed while up"

            temporal.stop()
            second, elapsed = await post_timed(alice, room["id"], f"@{bob['handle']} are you there")
            assert elapsed < 3.0, f"the first post of the outage took {elapsed:.1f} s"
            third, elapsed = await post_timed(alice, room["id"], f"@{bob['handle']} hello?")
            assert elapsed < 3.0, f"the second post of the outage took {elapsed:.1f} s"
            fourth, elapsed = await post_timed(alice, room["id"], f"@{bob['handle']} anyone?")
            assert elapsed < 1.0, f"with the guard open a post took {elapsed:.1f} s"
            assert _routing_state(database_url, second)[0] is None

            temporal.start()
            back = time.monotonic()
            while time.monotonic() - back < 60:
                outage = (second, third, fourth)
                if all(_routing_state(database_url, m)[0] is not None for m in outage):
                    break
                await asyncio.sleep(0.25)
            waited = time.monotonic() - back
            for message_id in (second, third, fourth):
                routed_at, metadata = _routing_state(database_url, message_id)
                assert routed_at is not None, f"message {message_id} not routed within 60 s"
                assert metadata["mentions"][0] == {
                    **metadata["mentions"][0],
                    "kind": "user",
                    "id": bob["id"],
                }
            with psycopg.connect(database_url) as conn:
                notified = conn.execute(
                    "SELECT data->>'message_id' FROM room_events"
                    " WHERE type = 'mention' AND room_id = %s",
                    (room["id"],),
                ).fetchall()
            assert sorted(int(r[0]) for r in notified) == [first, second, third, fourth]
            print(f"routed {waited:.1f} s after Temporal came back")
    finally:
        temporal.stop()


# --- one sweep round at a time ---------------------------------------------------------------


@pytest.fixture(scope="module")
def sweep_temporal(data_dir: Path) -> Iterator[TemporalDevServer]:
    server = TemporalDevServer(free_port(), None, log_file=data_dir / "sweep-unit-temporal.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
async def sweep_db(postgres) -> AsyncIterator[tuple[str, async_sessionmaker[AsyncSession]]]:
    url = await asyncio.to_thread(own_database, postgres, "iaf_sweep_unit")
    engine = make_engine(url, 4)
    yield url, make_sessionmaker(engine)
    await engine.dispose()


async def stored_messages(
    sessionmaker: async_sessionmaker[AsyncSession], count: int
) -> tuple[str, list[int]]:
    """Messages stored the way the post path stores those that need routing."""
    async with sessionmaker() as session:
        users = UserRepository(session)
        org = await users.create_org("Sweep org")
        user = await users.create(org.id, unique_email("sweep"), "Sam Sweep", "x", "org_admin")
        room = await RoomRepository(session).create(org.id, user.id, "sweep", "group", "", False)
        await session.flush()
        ids = []
        for n in range(count):
            message, _ = await MessageRepository(session).insert(room.id, user.id, f"hello {n}")
            ids.append(message.id)
        await session.commit()
    return str(room.id), ids


def backdate(database_url: str, ids: list[int], age_seconds: float) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE messages SET created_at = now() - make_interval(secs => %s) WHERE id = ANY(%s)",
            (age_seconds, ids),
        )


async def status_of(client: Client, message_id: int) -> WorkflowExecutionStatus | None:
    try:
        return (await client.get_workflow_handle(route_workflow_id(message_id)).describe()).status
    except RPCError:
        return None


async def wait_status(
    client: Client, message_id: int, status: WorkflowExecutionStatus, within: float = 20
) -> None:
    deadline = time.monotonic() + within
    while (found := await status_of(client, message_id)) != status:
        assert time.monotonic() < deadline, f"route-{message_id} is {found}, not {status}"
        await asyncio.sleep(0.05)


async def finish(client: Client, database_url: str, ids: list[int]) -> None:
    """Leave nothing for the next test's sweep: stop the runs, mark the messages routed."""
    for message_id in ids:
        await client.get_workflow_handle(route_workflow_id(message_id)).terminate("test over")
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE messages SET routed_at = now() WHERE id = ANY(%s)", (ids,))


@pytest.fixture
async def rig(data_dir, sweep_temporal, sweep_db):
    database_url, sessionmaker = sweep_db
    queue = f"sweep-unit-{uuid.uuid4().hex[:8]}"  # nobody polls it unless a test says so
    settings = make_settings(
        data_dir,
        database_url,
        sweep_temporal.address,
        temporal_task_queue=queue,
        temporal_retrieval_task_queue=f"{queue}-retrieval",
        sweep_batch_size=6,
        sweep_min_age_seconds=5.0,
    )
    return database_url, sessionmaker, settings, await connect(settings)


async def test_closed_runs_that_did_not_complete_are_started_again_completed_ones_marked(rig):
    database_url, sessionmaker, settings, client = rig
    room_id, (terminated, timed_out, done) = await stored_messages(sessionmaker, 3)
    backdate(database_url, [terminated, timed_out, done], 60)
    await client.start_workflow(
        "RouteMessage",
        RouteMessageInput(message_id=timed_out),
        id=route_workflow_id(timed_out),
        task_queue=settings.temporal_task_queue,
        execution_timeout=timedelta(seconds=1),
    )
    assert await start_route_message(client, settings, terminated, room_id)
    await client.get_workflow_handle(route_workflow_id(terminated)).terminate("by an operator")
    await wait_status(client, timed_out, WorkflowExecutionStatus.TIMED_OUT)
    async with running_worker(settings, serve_retrieval=False, sweep=False):
        assert await start_route_message(client, settings, done, room_id)
        await wait_status(client, done, WorkflowExecutionStatus.COMPLETED)
    assert _routing_state(database_url, done)[0] is not None
    with psycopg.connect(database_url) as conn:  # as if the run's own mark had been lost
        conn.execute("UPDATE messages SET routed_at = NULL WHERE id = %s", (done,))

    sweep = UnroutedSweep(sessionmaker, client, settings)
    result = await sweep.run_once()
    assert set(result.looked_at) == {terminated, timed_out, done}
    assert (result.started, result.marked_routed, result.errors) == (2, 1, 0), result
    for message_id in (terminated, timed_out):
        assert await status_of(client, message_id) == WorkflowExecutionStatus.RUNNING
    assert _routing_state(database_url, done)[0] is not None
    again = await sweep.run_once()
    assert done not in again.looked_at, "a message marked routed is not looked at again"
    assert again.running == 2 and again.started == 0
    third = await sweep.run_once()
    assert third.looked_at == [], "running ones are left alone for a while"
    await finish(client, database_url, [terminated, timed_out])


async def test_stuck_messages_never_hold_up_newer_ones(rig):
    database_url, sessionmaker, settings, client = rig
    _, stuck = await stored_messages(sessionmaker, 9)
    backdate(database_url, stuck, 600)
    sweep = UnroutedSweep(sessionmaker, client, settings)
    seen: set[int] = set()
    for _ in range(3):  # their RouteMessage runs start, and stay: nobody polls the queue
        seen |= set((await sweep.run_once()).looked_at)
    assert set(stuck) <= seen, "the cursor walks the whole backlog, six at a time"
    for message_id in stuck:
        assert await status_of(client, message_id) == WorkflowExecutionStatus.RUNNING
    sweep.recheck_at.clear()  # as if they had been stuck for long: every round asks again

    _, [new] = await stored_messages(sessionmaker, 1)
    backdate(database_url, [new], 10)
    result = await sweep.run_once()
    assert new in result.looked_at and result.started == 1, result
    assert await status_of(client, new) == WorkflowExecutionStatus.RUNNING
    await finish(client, database_url, [*stuck, new])


def test_the_guard_opens_after_an_outage_and_closes_after_the_backoff() -> None:
    now = [100.0]
    guard = StartGuard(1.0, 5.0, clock=lambda: now[0])
    guard.check()
    guard.failed()
    with pytest.raises(TemporalUnavailable):
        guard.check()
    now[0] += 5.1
    guard.check()  # half-open: one call goes through
    guard.succeeded()
    assert not guard.is_open


async def test_starts_against_a_stopped_server_give_up_fast_then_skip(tmp_path: Path) -> None:
    temporal = TemporalDevServer(free_port(), None, db_file=tmp_path / "guard.sqlite")
    temporal.start()
    settings = make_settings(
        tmp_path,
        "postgresql://unused@127.0.0.1:1/x",
        temporal.address,
        temporal_start_timeout_seconds=1.0,
    )
    client = await connect(settings, lazy=True)
    try:
        assert await start_route_message(client, settings, 1, str(uuid.uuid4()))
    finally:
        temporal.stop()
    guard = start_guard(client)
    assert guard is not None and not guard.is_open
    began = time.monotonic()
    with pytest.raises(TimeoutError):
        await start_route_message(client, settings, 2, str(uuid.uuid4()))
    assert time.monotonic() - began < 1.5, "bounded by temporal_start_timeout_seconds"
    assert not guard.is_open, "one slow start may be load"
    with pytest.raises(TimeoutError):
        await start_route_message(client, settings, 4, str(uuid.uuid4()))
    assert guard.is_open, "two in a row are an outage"
    began = time.monotonic()
    with pytest.raises(TemporalUnavailable):
        await start_route_message(client, settings, 3, str(uuid.uuid4()))
    assert time.monotonic() - began < 0.05
