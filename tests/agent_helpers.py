"""Helpers for the agent, knowledge and memory tests: ingestion, replies, database reads."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import psycopg
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter

from iaf.settings import Settings
from iaf.workflow_calls import reply_workflow_id
from schemas.agents import AgentReplyResult
from tests.helpers import Person, SSEStream


def isolated_settings(
    tmp_path: Path, database_url: str, temporal_address: str, prefix: str, **overrides: Any
) -> Settings:
    """Task queues and a Qdrant path of its own, for tests that run worker processes."""
    from tests.conftest import make_settings

    queue = f"{prefix}-{uuid.uuid4().hex[:8]}"
    return make_settings(
        tmp_path,
        database_url,
        temporal_address,
        temporal_task_queue=queue,
        temporal_retrieval_task_queue=f"{queue}-retrieval",
        qdrant_path=tmp_path / "qdrant",
        **overrides,
    )


async def streaming(stream: SSEStream, reply_id: str, deltas: int = 3) -> None:
    """Until the reply has streamed a few deltas (it is mid-answer)."""
    await stream.wait_for(
        lambda e: (
            e.event == "agent.delta" and e.data["reply_id"] == reply_id and e.data["seq"] >= deltas
        ),
        180,
    )


async def temporal(settings: Settings) -> Client:
    return await Client.connect(settings.temporal_address, data_converter=pydantic_data_converter)


def rows(database_url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return list(conn.execute(sql, params).fetchall())


async def ingest(
    person: Person,
    title: str,
    content: str,
    scope: str = "org",
    room_id: str | None = None,
    within: float = 60.0,
) -> dict[str, Any]:
    """Upload a document and wait until IngestKnowledge made it ready."""
    body: dict[str, Any] = {"title": title, "content": content, "scope": scope}
    if room_id is not None:
        body["room_id"] = room_id
    response = await person.post("/api/knowledge/documents", json=body)
    assert response.status_code == 202, response.text
    return await wait_document(person, response.json()["id"], {"ready"}, within)


async def wait_document(
    person: Person, document_id: str, statuses: set[str], within: float = 60.0
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        response = await person.get(f"/api/knowledge/documents/{document_id}")
        assert response.status_code == 200, response.text
        document = dict(response.json())
        if document["status"] in statuses:
            return document
        assert document["status"] != "failed", document
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"document stayed {document['status']}")
        await asyncio.sleep(0.1)


async def reply_result(
    client: Client, message_id: int, agent_id: str, within: float = 90.0
) -> AgentReplyResult:
    """Wait for AgentReply to exist (RouteMessage starts it) and return its result."""
    workflow_id = reply_workflow_id(message_id, agent_id)
    deadline = asyncio.get_running_loop().time() + within
    while True:
        try:
            handle = client.get_workflow_handle(workflow_id, result_type=AgentReplyResult)
            await handle.describe()
            break
        except Exception:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.1)
    return await asyncio.wait_for(handle.result(), within)


def reply_events(stream: SSEStream, reply_id: str) -> list[tuple[str, dict[str, Any]]]:
    return [(e.event, e.data) for e in stream.events if e.data.get("reply_id") == reply_id]


def streamed_text(events: list[tuple[str, dict[str, Any]]]) -> str:
    """The text a client shows: deltas since the last agent.reset, in order."""
    text = ""
    for kind, data in events:
        if kind == "agent.reset":
            text = ""
        elif kind == "agent.delta":
            text += data["text"]
    return text


def local_activities(history: WorkflowHistory) -> list[str]:
    """The local activities a workflow ran, in order (from their markers in its history)."""
    names = []
    for event in history.events:
        marker = event.marker_recorded_event_attributes
        if marker.marker_name == "core_local_activity":
            names.append(json.loads(marker.details["data"].payloads[0].data)["activity_type"])
    return names
