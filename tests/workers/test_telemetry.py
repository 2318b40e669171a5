"""What a worker counts: replies by outcome with their tokens and credits, the first delta,
ingestions and their chunks, GDPR requests against their deadline, the sweep's backlog."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from prometheus_client import REGISTRY

from iaf.db.engine import make_engine, make_sessionmaker
from iaf.settings import Settings
from schemas.knowledge import IngestResult
from tests.agent_helpers import ingest, reply_result, temporal
from tests.gdpr_helpers import execute
from tests.helpers import signup
from workers.telemetry import refresh_gauges

PASSWORD = "correct horse battery"


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_finished_reply_is_counted_with_its_tokens_and_credits(client, settings, worker):
    agent = "scrum-master"
    before = {
        "started": value("iaf_replies_started_total", agent=agent),
        "done": value("iaf_replies_ended_total", agent=agent, outcome="done"),
        "completion": value("iaf_llm_tokens_total", agent=agent, kind="completion"),
        "credits": value("iaf_credits_spent_total", agent=agent),
        "first_delta": value("iaf_reply_first_delta_seconds_count", agent=agent),
    }
    alice = await signup(client)
    room = await alice.new_room()
    message = await alice.say(room["id"], f"@{agent} what is our sprint goal?")
    result = await reply_result(await temporal(settings), message["id"], agent)
    assert result.status == "done" and result.completion_tokens > 0
    assert value("iaf_replies_started_total", agent=agent) >= before["started"] + 1
    assert value("iaf_replies_ended_total", agent=agent, outcome="done") >= before["done"] + 1
    completion = value("iaf_llm_tokens_total", agent=agent, kind="completion")
    assert completion >= before["completion"] + result.completion_tokens
    credits = value("iaf_credits_spent_total", agent=agent)
    assert credits >= before["credits"] + result.credits_charged
    first_delta = value("iaf_reply_first_delta_seconds_count", agent=agent)
    assert first_delta >= before["first_delta"] + 1


async def test_an_ingestion_is_counted_with_its_chunks(client, settings, worker):
    ready, chunks = (
        value("iaf_ingestions_total", outcome="ready"),
        value("iaf_ingested_chunks_total"),
    )
    alice = await signup(client)
    document = await ingest(alice, "Runbook", "Restart the sweep. " * 200, "org")
    handle = (await temporal(settings)).get_workflow_handle(
        f"ingest-{document['id']}", result_type=IngestResult
    )
    assert (await handle.result()).status == "ready"
    assert value("iaf_ingestions_total", outcome="ready") >= ready + 1
    assert value("iaf_ingested_chunks_total") >= chunks + document["chunk_count"]


async def test_gdpr_gauges_show_an_overdue_request_and_its_deadline(
    client, settings: Settings, worker
):
    alice = await signup(client, "Overdue Alice")
    scheduled = await alice.post("/api/user/delete-account", json={"password": PASSWORD})
    assert scheduled.status_code == 202, scheduled.text
    request = scheduled.json()
    engine = make_engine(settings.database_url)
    try:
        await refresh_gauges(make_sessionmaker(engine), settings)
        in_grace = value("iaf_gdpr_requests", kind="erasure", status="in_grace")
        assert in_grace >= 1
        overdue = value("iaf_gdpr_requests_overdue", kind="erasure")
        await execute(
            settings,
            "UPDATE data_subject_requests SET due_at = now() - interval '2 days' WHERE id = :id",
            id=request["id"],
        )
        await refresh_gauges(make_sessionmaker(engine), settings)
    finally:
        await engine.dispose()
        assert (await alice.post("/api/user/delete-account/cancel")).status_code == 200
    assert value("iaf_gdpr_requests_overdue", kind="erasure") == overdue + 1
    assert value("iaf_gdpr_seconds_to_nearest_deadline", kind="erasure") <= -2 * 86400 + 60
    assert value("iaf_gdpr_oldest_open_request_age_seconds", kind="erasure") > 0


async def test_the_due_date_is_a_search_attribute_operators_query(
    client, settings: Settings, worker
):
    """The README's query for overdue GDPR requests finds this one once its date passes."""
    alice = await signup(client, "Due Alice")
    scheduled = await alice.post("/api/user/delete-account", json={"password": PASSWORD})
    request = scheduled.json()
    due = datetime.fromisoformat(request["due_at"])
    tc = await temporal(settings)
    try:
        found: list[str] = []
        for moment, expected in (
            (due + timedelta(seconds=1), True),
            (due - timedelta(days=1), False),
        ):
            stamp = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            query = (
                f'Kind = "erasure" AND ExecutionStatus = "Running" AND DueAt < "{stamp}"'
                f' AND RequestId = "{request["id"]}"'
            )
            for _ in range(50):  # visibility is eventually consistent
                found = [w.id async for w in tc.list_workflows(query)]
                if bool(found) == expected:
                    break
                await asyncio.sleep(0.1)
            assert bool(found) == expected, query
        described = await tc.get_workflow_handle(request["workflow_id"]).describe()
        assert f"due {due:%Y-%m-%d}" in (await described.static_summary() or "")
    finally:
        assert (await alice.post("/api/user/delete-account/cancel")).status_code == 200
