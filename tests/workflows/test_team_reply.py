"""TeamReply end to end: several agents answer together, on the real stack.

The API and RouteMessage start `team-{message_id}`; the parts stream as drafts in parallel,
the orchestrator streams the one answer the room keeps; credits are reserved and settled per
call, a failing part fails alone, and a cancel stops every part.
"""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import CancelledError

from iaf.workflow_calls import team_part_id, team_workflow_id
from schemas.team import TeamReplyResult
from tests.agent_helpers import reply_events, rows, streamed_text, temporal
from tests.helpers import SSEStream, open_stream, signup


@pytest.fixture
async def tc(settings) -> Client:
    return await temporal(settings)


async def team_result(client: Client, message_id: int, within: float = 120.0) -> TeamReplyResult:
    handle = client.get_workflow_handle(team_workflow_id(message_id), result_type=TeamReplyResult)
    deadline = asyncio.get_running_loop().time() + within
    while True:
        try:
            await handle.describe()
            break
        except Exception:
            assert asyncio.get_running_loop().time() < deadline, "TeamReply never started"
            await asyncio.sleep(0.1)
    return await asyncio.wait_for(handle.result(), within)


def ledger(database_url: str, team_id: str) -> list[tuple[str, str, int]]:
    return [
        (str(r[0]), str(r[1]), int(r[2]))
        for r in rows(
            database_url,
            "SELECT source_id, source, amount FROM ledger_entries"
            " WHERE source_id = %s OR source_id LIKE %s ORDER BY source_id, id",
            team_id,
            f"{team_id}-%",
        )
    ]


def balance(database_url: str, user_id: str) -> int:
    return int(
        rows(
            database_url,
            "SELECT coalesce(sum(amount), 0) FROM ledger_entries WHERE user_id = %s",
            user_id,
        )[0][0]
    )


async def done_event(stream: SSEStream, team_id: str) -> dict:
    event = await stream.wait_for(
        lambda e: e.event == "team.done" and e.data["team_id"] == team_id, 120
    )
    return event.data


async def test_the_team_answers_together_and_the_orchestrator_credits_each_agent(
    client, settings, database_url, tc
):
    alice = await signup(client, "Alice Asker")
    room = await alice.new_room("billing")
    async with open_stream(client, alice, room["id"]) as stream:
        message = await alice.say(room["id"], "@team how do we ship the billing service?")
        team_id = team_workflow_id(message["id"])
        done = await done_event(stream, team_id)
        stored = await stream.wait_for(
            lambda e: e.event == "message.new" and e.data.get("sender_agent_id") == "orchestrator"
        )
    panel = ["architect", "developer", "tester"]
    started = next(e for e in stream.events if e.event == "team.start")
    assert started.data["agent_ids"] == panel
    assert started.data["synthesizer_id"] == "orchestrator"
    assert started.data["part_ids"] == [team_part_id(message["id"], a) for a in panel]
    assert done == {
        "team_id": team_id,
        "status": "done",
        "message_id": stored.data["id"],
        "parts": dict.fromkeys(panel, "done"),
    }
    for agent in panel:
        part = reply_events(stream, team_part_id(message["id"], agent))
        kinds = [kind for kind, _ in part]
        assert kinds[0] == "agent.start" and kinds[-1] == "agent.done", kinds
        assert part[0][1]["team_id"] == team_id and part[0][1]["part"] is True
        assert part[-1][1]["message_id"] is None, "a part is a draft, not a message"
        assert "My role:" in streamed_text(part)
    synthesis = reply_events(stream, team_id)
    assert synthesis[0][1]["part"] is False and synthesis[-1][0] == "agent.done"

    content = stored.data["content"]
    assert streamed_text(synthesis) == content
    assert content.startswith("(offline model) As the Orchestrator, bringing the team's 3")
    for name, role in (
        ("Architect", "Software architect"),
        ("Developer", "Senior software developer"),
        ("Tester", "QA engineer"),
    ):
        assert f'- **{name}**: "My role: {role}.' in content
    assert stored.data["team"] == {"team_id": team_id, "agents": panel, "answered": panel}
    assert stored.data["reply_to_id"] == message["id"]
    agent_messages = rows(
        database_url,
        "SELECT count(*) FROM messages WHERE room_id = %s AND type = 'agent'",
        room["id"],
    )
    assert agent_messages[0][0] == 1, "the room keeps one answer"

    result = await team_result(tc, message["id"])
    assert result.status == "done" and result.reply_message_id == stored.data["id"]
    assert await tc.get_workflow_handle(team_id).query("progress") == "done"
    entries = ledger(database_url, team_id)
    runs = sorted({source_id for source_id, _, _ in entries})
    assert runs == sorted([team_id, *(team_part_id(message["id"], a) for a in panel)])
    for run in runs:
        booked = [(source, amount) for source_id, source, amount in entries if source_id == run]
        assert [s for s, _ in booked] == ["reply-reserve", "reply-settle"], run
    charged = -sum(amount for _, _, amount in entries)
    assert charged == result.credits_charged > 0
    assert balance(database_url, alice.id) == settings.starting_credits - charged
    drafts = rows(
        database_url,
        "SELECT count(*) FROM agent_runs WHERE team_id = %s AND answer IS NOT NULL",
        team_id,
    )
    assert drafts[0][0] == 0, "the parts' drafts are gone once the team is done"


async def test_together_asks_the_agents_named_and_a_failing_part_fails_alone(
    client, database_url, tc
):
    alice = await signup(client)
    room = await alice.new_room("plans")
    async with open_stream(client, alice, room["id"]) as stream:
        message = await alice.say(
            room["id"], "@qa and @pm together: are we ready? [offline: fail-for=qa]"
        )
        team_id = team_workflow_id(message["id"])
        done = await done_event(stream, team_id)
    assert done["parts"] == {"qa": "error", "pm": "done"} and done["status"] == "done"
    failed = reply_events(stream, team_part_id(message["id"], "qa"))
    assert failed[-1][0] == "agent.error" and failed[-1][1]["error"]["code"] == "llm_failed"
    content = rows(database_url, "SELECT content FROM messages WHERE id = %s", done["message_id"])
    assert "- **QA Architect** could not answer." in content[0][0]
    assert '- **PM**: "My role: Product manager.' in content[0][0]
    notices = rows(
        database_url,
        "SELECT count(*) FROM messages WHERE room_id = %s AND type = 'system'",
        room["id"],
    )
    assert notices[0][0] == 0, "the team's answer says who failed; no notice per part"
    qa_ledger = [(s, a) for run, s, a in ledger(database_url, team_id) if run.endswith("-qa")]
    assert qa_ledger == [("reply-reserve", -50), ("reply-release", 50)]
    result = await team_result(tc, message["id"])
    assert [(p.agent_id, p.status) for p in result.parts] == [("qa", "error"), ("pm", "done")]


async def test_a_part_retried_on_its_own_and_nobody_answering_fails_the_team(
    client, settings, database_url, tc
):
    alice = await signup(client)
    room = await alice.new_room("retries")
    message = await alice.say(room["id"], "@team status please [offline: fail-once=team-retry]")
    result = await team_result(tc, message["id"])
    assert result.status == "done"
    attempts = rows(
        database_url,
        "SELECT stream_attempt FROM agent_runs WHERE team_id = %s ORDER BY reply_id",
        result.team_id,
    )
    assert sorted(a[0] for a in attempts) == [1, 1, 1, 2], "one call failed and was retried alone"

    before = balance(database_url, alice.id)
    async with open_stream(client, alice, room["id"]) as stream:
        failing = await alice.say(room["id"], "@team does anything work? [offline: fail]")
        done = await done_event(stream, team_workflow_id(failing["id"]))
    assert done["status"] == "error" and set(done["parts"].values()) == {"error"}
    assert balance(database_url, alice.id) == before, "every reservation released"
    notice = rows(
        database_url,
        "SELECT content FROM messages WHERE room_id = %s AND type = 'system'",
        room["id"],
    )
    assert [n[0] for n in notice] == [
        "Orchestrator could not answer: None of the agents asked could answer; please try"
        " again later."
    ]


async def test_cancelling_any_reply_of_the_team_stops_every_part(
    client, settings, database_url, tc
):
    alice = await signup(client)
    room = await alice.new_room("cancel")
    async with open_stream(client, alice, room["id"]) as stream:
        message = await alice.say(room["id"], "@team write a long survey [offline: slow=3]")
        part = team_part_id(message["id"], "developer")
        await stream.wait_for(lambda e: e.event == "agent.delta" and e.data["reply_id"] == part, 90)
        cancel = await alice.post(f"/api/chat/rooms/{room['id']}/replies/{part}/cancel")
        assert cancel.status_code == 202, cancel.text
        done = await done_event(stream, team_workflow_id(message["id"]))
    assert done["status"] == "cancelled" and done["message_id"] is None
    assert set(done["parts"].values()) == {"cancelled"}
    errors = [e.data["reply_id"] for e in stream.events if e.event == "agent.error"]
    assert sorted(errors) == sorted(
        [team_workflow_id(message["id"])]
        + [team_part_id(message["id"], a) for a in ("architect", "developer", "tester")]
    )
    assert balance(database_url, alice.id) == settings.starting_credits, "all released"
    stored = rows(
        database_url,
        "SELECT count(*) FROM messages WHERE room_id = %s AND type = 'agent'",
        room["id"],
    )
    assert stored[0][0] == 0
    handle = tc.get_workflow_handle(team_workflow_id(message["id"]))
    with pytest.raises(WorkflowFailureError) as ended:
        await asyncio.wait_for(handle.result(), 60)
    assert isinstance(ended.value.cause, CancelledError)
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    again = await alice.post(
        f"/api/chat/rooms/{room['id']}/replies/{team_workflow_id(message['id'])}/cancel"
    )
    assert again.status_code == 409


async def test_team_reply_ids_are_checked_before_any_lookup(client):
    alice = await signup(client)
    room = await alice.new_room()
    for bad in ("team-", "team-x", "team-12-", "teams-12", "team-12-UPPER"):
        response = await alice.post(f"/api/chat/rooms/{room['id']}/replies/{bad}/cancel")
        assert response.status_code == 422, bad
    missing = await alice.get(f"/api/chat/rooms/{room['id']}/replies/team-999999")
    assert missing.status_code == 404
