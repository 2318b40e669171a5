"""RouteMessage is started on post, runs once per message, and records mentions by ID."""

from __future__ import annotations

import asyncio

import psycopg
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from iaf.workflow_calls import route_workflow_id, start_route_message
from schemas.workflows import RouteMessageResult
from tests.helpers import colleague, signup


async def _wait_routed(database_url: str, message_id: int) -> dict:
    for _ in range(200):
        with psycopg.connect(database_url) as conn:
            row = conn.execute(
                "SELECT routed_at, metadata FROM messages WHERE id = %s", (message_id,)
            ).fetchone()
        if row and row[0] is not None:
            return dict(row[1])
        await asyncio.sleep(0.05)
    raise AssertionError("message was never routed")


async def test_mentions_are_recorded_and_the_workflow_runs_once(client, settings, database_url):
    alice = await signup(client)
    bob = await colleague(alice, "Bob Builder")
    room = await alice.new_room(member_ids=[bob.id])
    text = (
        f"@architect and @{bob.user['handle']} please look; mail me at x@example.com `@developer`"
    )
    message = await alice.say(room["id"], text)
    metadata = await _wait_routed(database_url, message["id"])
    kinds = [(m["kind"], m["id"]) for m in metadata["mentions"]]
    assert kinds == [("agent", "architect"), ("user", bob.id)]
    temporal = await Client.connect(
        settings.temporal_address, data_converter=pydantic_data_converter
    )
    handle = temporal.get_workflow_handle(
        route_workflow_id(message["id"]), result_type=RouteMessageResult
    )
    result = await handle.result()
    assert result.agent_ids == ["architect"]
    again = await start_route_message(temporal, settings, message["id"], room["id"])
    assert again is False, "a duplicate start is refused, not run twice"


async def test_plain_messages_skip_temporal(client, settings, database_url):
    alice = await signup(client)
    room = await alice.new_room()
    message = await alice.say(room["id"], "no mentions here")
    with psycopg.connect(database_url) as conn:
        routed = conn.execute(
            "SELECT routed_at FROM messages WHERE id = %s", (message["id"],)
        ).fetchone()
    assert routed[0] is not None
    temporal = await Client.connect(
        settings.temporal_address, data_converter=pydantic_data_converter
    )
    started = await start_route_message(temporal, settings, message["id"], room["id"])
    assert started is True  # no workflow existed for it
