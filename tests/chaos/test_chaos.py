"""Faults on real processes, each with the invariant that must hold once it is over.

One stack of real processes for the module (tests/chaos/stack.py): its own PostgreSQL,
Temporal dev server (SQLite file), SMTP server, `iaf api` and `iaf worker` processes. The
scenarios inject the faults the issue lists: workers SIGKILLed mid-reply, Temporal stalled
then killed and restarted, PostgreSQL stalled (SIGSTOP) and stopped, an API process killed
under its SSE clients, the SMTP server refusing mail. `make soak` scales them up
(IAF_CHAOS_SCALE). Each test prints what it injected and what it measured.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from iaf.workflow_calls import reply_workflow_id
from tests.chaos.clients import ResumingStream
from tests.chaos.stack import (
    SCALE,
    ChaosStack,
    healthy,
    kill,
    stop_process,
    until,
    until_complete,
)
from tests.helpers import Person, signup, unique_email

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaosStack]:
    chaos = ChaosStack(tmp_path_factory.mktemp("chaos"))
    chaos.start()
    try:
        yield chaos
    finally:
        chaos.stop()


@pytest.fixture(scope="module")
async def api(stack: ChaosStack) -> AsyncIterator[str]:
    process, url = await stack.api("api-1")
    await until(lambda: healthy(url), 120, "the API")
    yield url
    stop_process(process)


@pytest.fixture(scope="module")
async def http(api: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api, timeout=120) as client:
        yield client


async def say_retrying(person: Person, room_id: str, content: str) -> None:
    """As a client does after an outage: a 503 is retried after its Retry-After."""
    for _ in range(60):
        response = await person.post(
            f"/api/chat/rooms/{room_id}/messages", json={"content": content}
        )
        if response.status_code in (200, 201):
            return
        assert response.status_code == 503, response.text
        await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
    raise AssertionError("still unavailable")


def text_after_last_reset(stream: ResumingStream, reply_id: str) -> str:
    text = ""
    for event in stream.events:
        if event.data.get("reply_id") != reply_id:
            continue
        if event.event == "agent.reset":
            text = ""
        elif event.event == "agent.delta":
            text += event.data["text"]
    return text


def assert_exact(stream: ResumingStream, stack: ChaosStack) -> None:
    """The client saw every stored event of its room once, in order: no gap, no duplicate."""
    seen = [e.id for e in stream.stored()]
    stored = [
        row[0]
        for row in stack.rows(
            "SELECT id FROM room_events WHERE room_id = %s ORDER BY id", stream.room_id
        )
    ]
    first = seen[0] if seen else None
    expected = [i for i in stored if first is not None and i >= first]
    assert len(seen) == len(set(seen)), "a duplicate event"
    assert seen == expected, f"gap or disorder: {len(seen)} seen, {len(expected)} stored"


# --- 1. workers SIGKILLed while 100 replies stream ------------------------------------------


async def test_replies_survive_workers_killed_mid_stream(
    stack: ChaosStack, api: str, http: httpx.AsyncClient
) -> None:
    users, per_user, kills = 20, 5 * SCALE, 5
    stack.ensure_worker()
    people = [await signup(http, f"Chaos {n}") for n in range(users)]
    rooms = [await person.new_room("replies") for person in people]
    streams = [ResumingStream([api], p.token, r["id"]) for p, r in zip(people, rooms, strict=True)]
    for stream in streams:
        stream.start()
    await asyncio.gather(*(s.connected() for s in streams))

    async def post_all(person: Person, room_id: str) -> list[int]:
        ids = []
        for n in range(per_user):
            said = await person.say(room_id, f"@architect question {n}? [offline: slow=40]")
            ids.append(int(said["id"]))
        return ids

    posted = await asyncio.gather(
        *(post_all(p, r["id"]) for p, r in zip(people, rooms, strict=True))
    )
    reply_ids = {reply_workflow_id(m, "architect") for ids in posted for m in ids}
    assert len(reply_ids) == users * per_user

    def deltas() -> int:
        return sum(1 for s in streams for e in s.events if e.event == "agent.delta")

    for n in range(kills):
        before = deltas()
        await until(lambda before=before: deltas() > before + 20, 300, "replies streaming")
        kill(stack.ensure_worker())  # the running worker, mid-stream
        stack.worker(f"worker-{n + 1}")

    def done() -> int:
        failed = stack.rows(
            "SELECT error->>'code', count(*) FROM agent_runs"
            " WHERE reply_id = ANY(%s) AND status IN ('error', 'cancelled') GROUP BY 1",
            list(reply_ids),
        )
        assert not failed, f"replies ended without an answer: {failed}"
        return stack.rows(
            "SELECT count(*) FROM messages WHERE metadata->>'reply_id' = ANY(%s)", list(reply_ids)
        )[0][0]

    await until_complete(done, len(reply_ids), 300, "replies stored")

    def all_done_seen() -> bool:
        seen = {
            e.data.get("reply_id") for s in streams for e in s.events if e.event == "agent.done"
        }
        return reply_ids <= seen

    await until(all_done_seen, 120, "agent.done on every client")
    for stream in streams:
        await stream.stop()

    stored = stack.rows(
        "SELECT metadata->>'reply_id', count(*), min(content) FROM messages"
        " WHERE metadata->>'reply_id' = ANY(%s) GROUP BY 1",
        list(reply_ids),
    )
    assert len(stored) == len(reply_ids) and all(count == 1 for _, count, _ in stored)
    by_room = {s.room_id: s for s in streams}
    rooms_of = dict(
        stack.rows(
            "SELECT metadata->>'reply_id', room_id::text FROM messages"
            " WHERE metadata->>'reply_id' = ANY(%s)",
            list(reply_ids),
        )
    )
    resets = 0
    for reply_id, _, content in stored:
        stream = by_room[rooms_of[reply_id]]
        assert text_after_last_reset(stream, reply_id) == content, reply_id
        resets += sum(
            1 for e in stream.events if e.event == "agent.reset" and e.data["reply_id"] == reply_id
        )
    ledger = stack.rows(
        "SELECT source, count(*), count(DISTINCT source_id) FROM ledger_entries"
        " WHERE source_id = ANY(%s) GROUP BY source",
        list(reply_ids),
    )
    counts = {source: (n, distinct) for source, n, distinct in ledger}
    assert counts["reply-reserve"] == (len(reply_ids), len(reply_ids))
    assert counts["reply-settle"] == (len(reply_ids), len(reply_ids)), "settled once each"
    assert "reply-release" not in counts
    busiest, restarted = stack.rows(
        "SELECT max(stream_attempt), count(*) FILTER (WHERE stream_attempt > %s) FROM agent_runs"
        " WHERE reply_id = ANY(%s)",
        stack.settings.reply_stream_max_attempts,
        list(reply_ids),
    )[0]
    print(
        f"\nchaos/replies: {len(reply_ids)} replies, {kills} worker SIGKILLs,"
        f" {resets} agent.reset seen, {len(stored)} stored once, 0 lost; the busiest stream"
        f" made {busiest} claims, {restarted} replies needed more than"
        f" {stack.settings.reply_stream_max_attempts} (started over after a lost worker)"
    )


# --- 2. Temporal stalled, then killed and restarted ------------------------------------------


async def test_posts_are_acknowledged_while_temporal_is_away(
    stack: ChaosStack, api: str, http: httpx.AsyncClient
) -> None:
    stack.ensure_worker()
    alice = await signup(http, "Temporal Chaos")
    room = await alice.new_room("routing")
    timeout = stack.settings.temporal_start_timeout_seconds
    mentions = "@architect @pm @developer"
    stalled_posts: list[tuple[int, float]] = []
    stalled_messages: list[httpx.Response] = []
    with stack.temporal_stalled():
        for n in range(3):
            started = time.monotonic()
            said = await alice.post(
                f"/api/chat/rooms/{room['id']}/messages", json={"content": f"{mentions} s{n}"}
            )
            stalled_posts.append((said.status_code, time.monotonic() - started))
            stalled_messages.append(said)
    assert all(status == 201 for status, _ in stalled_posts)
    stalled_ids = [m.json()["id"] for m in stalled_messages]
    # All starts of a post run at once within one timeout (three agents + RouteMessage:
    # in sequence that was four timeouts).
    assert max(seconds for _, seconds in stalled_posts) < 2 * timeout + 1, stalled_posts

    outage_posts = []
    with stack.temporal_killed():
        for n in range(10 * SCALE):
            said = await alice.post(
                f"/api/chat/rooms/{room['id']}/messages", json={"content": f"@architect o{n}"}
            )
            outage_posts.append(said)
    assert [r.status_code for r in outage_posts] == [201] * len(outage_posts)
    message_ids = [r.json()["id"] for r in outage_posts]

    def routed() -> bool:
        replies = stack.rows(
            "SELECT count(DISTINCT metadata->>'reply_id') FROM messages"
            " WHERE metadata->>'reply_id' = ANY(%s)",
            [reply_workflow_id(m, "architect") for m in message_ids + stalled_ids],
        )[0][0]
        return replies == len(message_ids) + len(stalled_ids)

    await until(routed, 300, "every message routed and answered after Temporal came back", 0.5)
    print(
        f"\nchaos/temporal: stalled posts {[round(s, 2) for _, s in stalled_posts]} s"
        f" (start timeout {timeout} s); {len(outage_posts)} posts during the kill, all 201,"
        " all answered after the restart"
    )


# --- 3. PostgreSQL stalled, then stopped ------------------------------------------------------


async def _traffic_during(
    stack: ChaosStack, api: str, person: Person, room_id: str, fault: Any, seconds: float
) -> tuple[list[tuple[int, float, str | None]], list[int]]:
    """POSTs every 100 ms from three clients, before, while `fault` holds for `seconds`, and
    after; (status, latency, Retry-After) of each, and the ids acknowledged with 201."""
    answers: list[tuple[int, float, str | None]] = []
    acknowledged: list[int] = []
    async with httpx.AsyncClient(base_url=api, timeout=60) as client:

        async def poster(tag: int) -> None:
            n = 0
            while not stop.is_set():
                started = time.monotonic()
                response = await client.post(
                    f"/api/chat/rooms/{room_id}/messages",
                    json={
                        "content": f"during {tag}-{n}",
                        "client_msg_id": f"{tag}-{n}-{time.time()}",
                    },
                    headers=person.headers,
                )
                answers.append(
                    (
                        response.status_code,
                        time.monotonic() - started,
                        response.headers.get("Retry-After"),
                    )
                )
                if response.status_code == 201:
                    acknowledged.append(int(response.json()["id"]))
                n += 1
                await asyncio.sleep(0.1)

        stop = asyncio.Event()
        tasks = [asyncio.create_task(poster(tag)) for tag in range(3)]
        await until(lambda: len(acknowledged) >= 3, 60, "traffic before the fault")
        with fault():
            await asyncio.sleep(seconds)
        during = len(acknowledged)
        await until(lambda: len(acknowledged) >= during + 3, 120, "traffic after the fault")
        stop.set()
        await asyncio.gather(*tasks)
    return answers, acknowledged


@pytest.mark.parametrize("fault", ["stalled", "stopped"])
async def test_postgres_away_answers_503_quickly_and_streams_resume_exactly(
    stack: ChaosStack, api: str, http: httpx.AsyncClient, fault: str
) -> None:
    alice = await signup(http, f"PG {fault}")
    room = await alice.new_room("outage")
    stream = ResumingStream([api], alice.token, room["id"])
    stream.start()
    await stream.connected()
    await alice.say(room["id"], "before the outage")
    hold = stack.postgres_stalled if fault == "stalled" else stack.postgres_down
    answers, acknowledged = await _traffic_during(stack, api, alice, room["id"], hold, 10.0)
    await until(lambda: healthy(api), 120, "the API ready again")
    await say_retrying(alice, room["id"], "after the outage")
    await until(
        lambda: any(e.data.get("content") == "after the outage" for e in stream.events),
        60,
        "the stream back",
    )
    await stream.stop()
    statuses = sorted({status for status, _, _ in answers})
    unavailable = [(s, t, r) for s, t, r in answers if s == 503]
    assert set(statuses) <= {201, 503}, statuses
    assert unavailable, "the outage was seen"
    assert all(retry is not None for _, _, retry in unavailable), "503 carries Retry-After"
    slowest = max(t for _, t, _ in answers)
    assert slowest < 2.0 + 0.5, f"a request waited {slowest:.2f} s"
    assert "database_unavailable" in stream.ends, stream.ends
    assert_exact(stream, stack)
    stored = {
        row[0] for row in stack.rows("SELECT id FROM messages WHERE room_id = %s", room["id"])
    }
    assert set(acknowledged) <= stored, "an acknowledged post was lost"
    print(
        f"\nchaos/postgres-{fault}: 10 s; {len(answers)} posts, {len(unavailable)} answered 503,"
        f" slowest answer {slowest:.2f} s, {len(acknowledged)} acknowledged and stored,"
        f" stream ended {stream.ends.count('database_unavailable')}x and resumed with no gap"
    )


# --- 4. one of two API processes killed under its SSE clients --------------------------------


async def test_clients_of_a_killed_api_resume_on_the_other(
    stack: ChaosStack, api: str, http: httpx.AsyncClient
) -> None:
    doomed, doomed_url = await stack.api("api-2")
    await until(lambda: healthy(doomed_url), 120, "the second API")
    people = [await signup(http, f"Failover {n}") for n in range(5)]
    rooms = [await p.new_room("failover") for p in people]
    streams = [
        ResumingStream([doomed_url, api], p.token, r["id"])
        for p, r in zip(people, rooms, strict=True)
    ]
    for stream in streams:
        stream.start()
    await asyncio.gather(*(s.connected() for s in streams))

    async def chatter(person: Person, room_id: str, count: int) -> None:
        for n in range(count):
            await person.say(room_id, f"line {n}")
            await asyncio.sleep(0.05)

    talk = [
        asyncio.create_task(chatter(p, r["id"], 40 * SCALE))
        for p, r in zip(people, rooms, strict=True)
    ]
    await asyncio.sleep(0.5)
    kill(doomed)
    await asyncio.gather(*talk)
    last = {
        r["id"]: stack.rows("SELECT max(id) FROM room_events WHERE room_id = %s", r["id"])[0][0]
        for r in rooms
    }
    await until(
        lambda: all(s.last_id == last[s.room_id] for s in streams), 60, "every client caught up"
    )
    for stream in streams:
        await stream.stop()
        assert stream.connects >= 2, "reconnected to the other process"
        assert_exact(stream, stack)
    print(
        f"\nchaos/api-kill: 1 of 2 API processes SIGKILLed under {len(streams)} SSE clients;"
        f" all resumed on the other with no gap and no duplicate"
    )


# --- 5. the SMTP server refusing, then accepting ---------------------------------------------


async def test_an_invitation_mail_goes_out_once_when_smtp_comes_back(
    stack: ChaosStack, http: httpx.AsyncClient
) -> None:
    stack.ensure_worker()
    alice = await signup(http, "Mail Chaos")
    room = await alice.new_room("mail")
    address = unique_email("invitee")
    stack.smtp.stop()  # first down: connections refused
    response = await alice.post(f"/api/chat/rooms/{room['id']}/invite", json={"email": address})
    assert response.status_code == 201, response.text
    invitation_id = response.json()["id"]
    await asyncio.sleep(2)  # attempts fail against no server
    stack.smtp.refusing = True  # then up, answering 451 to every recipient
    stack.smtp.start()
    await until(lambda: stack.smtp.refusals >= 2, 120, "the sender retrying")
    stack.smtp.refusing = False
    await until(lambda: stack.smtp.to(address), 300, "the mail", every=0.2)

    def marked_sent() -> bool:
        return bool(
            stack.rows(
                "SELECT 1 FROM invitations WHERE id = %s AND invite_sent_at IS NOT NULL",
                invitation_id,
            )
        )

    await until(marked_sent, 60, "the invitation marked sent")
    refusals = stack.smtp.refusals
    # Any retry still in flight would show within the next backoff step.
    await asyncio.sleep(3)
    assert len(stack.smtp.to(address)) == 1, "the mail went out once"
    print(
        f"\nchaos/smtp: server down, then {refusals} refusals (451); the invitation mail"
        " went out exactly once"
    )


def test_chaos_stack_data_stays_in_its_own_directory(stack: ChaosStack) -> None:
    assert Path(stack.settings.data_dir) == stack.root
