"""The agent database steps against the real PostgreSQL: credits are reserved exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from temporalio.testing import ActivityEnvironment

from activities.agents_db import AgentDbActivities
from iaf.db.engine import make_engine, make_sessionmaker
from iaf.workflow_calls import reply_workflow_id
from schemas.agents import AgentReplyInput
from tests.agent_helpers import rows
from tests.helpers import signup


@pytest.fixture
async def agents(settings, database_url) -> AsyncIterator[AgentDbActivities]:
    engine = make_engine(database_url, 4)
    yield AgentDbActivities(make_sessionmaker(engine), None, settings)  # type: ignore[arg-type]
    await engine.dispose()


async def test_concurrent_replies_never_reserve_more_than_the_balance(
    client, settings, database_url, agents
):
    alice = await signup(client)
    room = await alice.new_room()
    amount = settings.reply_credit_reservation
    rows(
        database_url,
        "INSERT INTO ledger_entries (user_id, amount, kind, source, source_id, meta)"
        " SELECT %s, %s - coalesce(sum(amount), 0), 'grant', 'test', %s, '{}'::jsonb"
        " FROM ledger_entries WHERE user_id = %s RETURNING id",
        alice.id,
        amount,
        f"exactly-one-{alice.id}",
        alice.id,
    )
    replies = []
    for agent in ("architect", "developer", "tester", "writer"):
        message = await alice.say(room["id"], f"{agent}, one question")
        replies.append(
            AgentReplyInput(
                reply_id=reply_workflow_id(message["id"], agent),
                message_id=message["id"],
                room_id=room["id"],
                agent_id=agent,
                requested_by=alice.id,
            )
        )
    env = ActivityEnvironment()
    begun = await asyncio.gather(*(env.run(agents.begin_reply, r) for r in replies))
    assert sorted(b.status for b in begun) == ["refused", "refused", "refused", "running"]
    balance = rows(
        database_url, "SELECT sum(amount) FROM ledger_entries WHERE user_id = %s", alice.id
    )
    assert int(balance[0][0]) == 0
    again = await env.run(agents.begin_reply, replies[[b.status for b in begun].index("running")])
    assert again.status == "running", "a retried begin keeps its reservation"
    assert (
        int(
            rows(
                database_url, "SELECT sum(amount) FROM ledger_entries WHERE user_id = %s", alice.id
            )[0][0]
        )
        == 0
    )
