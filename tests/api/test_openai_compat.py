"""The OpenAI-compatible API against the real stack: the official `openai` client lists the
agents and talks to them through the AgentReply workflow (real Temporal, real worker, the
offline model behind litellm); raw HTTP checks the wire format and every refusal."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest
from openai import AsyncOpenAI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from iaf.agents.registry import get_registry
from iaf.db.engine import make_engine, make_sessionmaker
from iaf.db.repositories.ledger import LedgerRepository
from iaf.settings import Settings
from tests.helpers import Person, serve_api, signup

QUESTION = "How should we split the billing service into components?"


@pytest.fixture(scope="module")
async def sessionmaker(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(database_url, 2)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def api_key(person: Person) -> str:
    response = await person.post("/api/auth/api-keys", json={"name": "openai sdk"})
    assert response.status_code == 201, response.text
    return str(response.json()["key"])


async def sdk(api_url: str, person: Person) -> AsyncOpenAI:
    return AsyncOpenAI(
        base_url=f"{api_url}/v1", api_key=await api_key(person), max_retries=0, timeout=60
    )


async def api_rooms(person: Person) -> list[dict[str, Any]]:
    everyday = await person.get("/api/chat/rooms")
    assert all(r["kind"] != "api" for r in everyday.json()["items"]), (
        "API conversations stay out of the chat list"
    )
    response = await person.get("/api/chat/rooms", params={"kind": "api"})
    return [r for r in response.json()["items"] if r["kind"] == "api"]


async def room_messages(person: Person, room_id: str) -> list[dict[str, Any]]:
    response = await person.get(f"/api/chat/rooms/{room_id}/messages")
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def reply_row(
    sessionmaker: async_sessionmaker[AsyncSession], reply_id: str
) -> dict[str, Any] | None:
    async with sessionmaker() as session:
        row = (
            await session.execute(
                text("SELECT status, context, usage FROM agent_runs WHERE reply_id = :r"),
                {"r": reply_id},
            )
        ).first()
    return None if row is None else {"status": row[0], "context": row[1], "usage": row[2]}


async def wait_status(
    sessionmaker: async_sessionmaker[AsyncSession], reply_id: str, status: str
) -> dict[str, Any]:
    for _ in range(300):
        row = await reply_row(sessionmaker, reply_id)
        if row is not None and row["status"] == status:
            return row
        await asyncio.sleep(0.1)
    raise AssertionError(f"{reply_id} never reached {status}: {row}")


def history_ids(context: dict[str, Any]) -> list[int]:
    """The messages a reply read as history (full context while running, refs once settled)."""
    if "history_message_ids" in context:
        return list(context["history_message_ids"])
    return [h["message_id"] for h in context["history"]]


def reply_id_of(completion_id: str) -> str:
    assert completion_id.startswith("chatcmpl-reply-"), completion_id
    return completion_id.removeprefix("chatcmpl-")


async def test_the_official_client_lists_the_agents_as_models(api_url, client):
    alice = await signup(client)
    oa = await sdk(api_url, alice)
    models = await oa.models.list()
    assert sorted(m.id for m in models.data) == sorted(p.id for p in get_registry())
    assert {(m.object, m.owned_by) for m in models.data} == {("model", "iafactory")}
    assert all(isinstance(m.created, int) and m.created > 0 for m in models.data)
    one = await oa.models.retrieve("architect")
    assert one.id == "architect"
    with pytest.raises(openai.NotFoundError) as missing:
        await oa.models.retrieve("gpt-4o")
    assert missing.value.code == "model_not_found"


async def test_the_official_client_streams_a_reply_from_the_workflow(api_url, client):
    alice = await signup(client)
    oa = await sdk(api_url, alice)
    stream = await oa.chat.completions.create(
        model="architect",
        messages=[
            {"role": "developer", "content": [{"type": "text", "text": "Answer briefly."}]},
            {"role": "user", "content": QUESTION},
        ],
        stream=True,
        stream_options={"include_usage": True},
        temperature=0.2,
        max_tokens=200,
    )
    chunks = [chunk async for chunk in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert {c.id for c in chunks} == {chunks[0].id}
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert {c.model for c in chunks} == {"architect"}
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert [f for f in finishes if f] == ["stop"] and finishes[-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == len(content.split())
    assert chunks[-1].usage.total_tokens == (
        chunks[-1].usage.prompt_tokens + chunks[-1].usage.completion_tokens
    )
    assert content.startswith("(offline model) As the Architect")
    assert "billing service" in content

    [room] = await api_rooms(alice)
    stored = await room_messages(alice, room["id"])
    assert [(m["sender_user_id"], m["sender_agent_id"]) for m in stored] == [
        (alice.id, None),
        (alice.id, None),
        (None, "architect"),
    ]
    assert [m["content"] for m in stored[:2]] == ["Answer briefly.", QUESTION]
    assert stored[2]["content"] == content


async def test_the_raw_stream_is_openai_sse_and_jwt_works_too(client):
    alice = await signup(client)
    body = {"model": "writer", "messages": [{"role": "user", "content": "Draft release notes"}]}
    request = client.build_request(
        "POST", "/v1/chat/completions", json={**body, "stream": True}, headers=alice.headers
    )
    response = await client.send(request, stream=True)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    lines = [line async for line in response.aiter_lines()]
    await response.aclose()
    events = [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"] == [
        {
            "index": 0,
            "delta": {"role": "assistant", "content": ""},
            "logprobs": None,
            "finish_reason": None,
        }
    ]
    assert all("usage" not in c for c in chunks)  # only with stream_options.include_usage
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert all(isinstance(c["created"], int) for c in chunks)
    assert chunks[-1]["choices"][0]["delta"] == {}
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    middle = [c["choices"][0]["delta"] for c in chunks[1:-1]]
    assert middle and all(set(d) == {"content"} and d["content"] for d in middle)


async def test_a_non_streaming_completion_returns_the_stored_reply(api_url, client, sessionmaker):
    alice = await signup(client)
    oa = await sdk(api_url, alice)
    completion = await oa.chat.completions.create(
        model="security", messages=[{"role": "user", "content": "Is our login flow GDPR safe?"}]
    )
    assert completion.object == "chat.completion"
    assert completion.model == "security"
    [choice] = completion.choices
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content.startswith('(offline model) As Security, on "Is our login')
    assert completion.usage is not None
    assert completion.usage.completion_tokens == len(choice.message.content.split())
    run = await reply_row(sessionmaker, reply_id_of(completion.id))
    assert run is not None and run["status"] == "done"
    assert run["usage"]["completion_tokens"] == completion.usage.completion_tokens
    [room] = await api_rooms(alice)
    assert (await room_messages(alice, room["id"]))[-1]["content"] == choice.message.content


async def test_a_follow_up_continues_the_conversation_room_and_an_edit_starts_a_new_one(
    api_url, client, sessionmaker
):
    alice = await signup(client)
    oa = await sdk(api_url, alice)
    first_q = {"role": "user", "content": "We need a queue for e-mails."}
    first = await oa.chat.completions.create(model="architect", messages=[first_q])
    answer = {"role": "assistant", "content": first.choices[0].message.content}
    second_q = {"role": "user", "content": "And how do we retry failed sends?"}
    second = await oa.chat.completions.create(
        model="architect", messages=[first_q, answer, second_q]
    )
    [room] = await api_rooms(alice)
    stored = await room_messages(alice, room["id"])
    assert [m["content"] for m in stored] == [
        first_q["content"],
        answer["content"],
        second_q["content"],
        second.choices[0].message.content,
    ]
    run = await reply_row(sessionmaker, reply_id_of(second.id))
    assert run is not None
    assert history_ids(run["context"]) == [stored[0]["id"], stored[1]["id"]]

    edited = {"role": "user", "content": "Actually, what about SMS?"}
    await oa.chat.completions.create(model="architect", messages=[first_q, answer, edited])
    rooms = await api_rooms(alice)
    assert len(rooms) == 2
    newest = await room_messages(alice, rooms[0]["id"])
    assert [m["content"] for m in newest[:3]] == [
        first_q["content"],
        answer["content"],
        edited["content"],
    ]


async def test_two_concurrent_follow_ups_never_interleave_in_one_room(api_url, client):
    alice = await signup(client)
    oa = await sdk(api_url, alice)
    question = {"role": "user", "content": "Plan the data model."}
    first = await oa.chat.completions.create(model="data-engineer", messages=[question])
    answer = {"role": "assistant", "content": first.choices[0].message.content}
    follow_ups = [
        [question, answer, {"role": "user", "content": f"Variant {i}: which tables?"}]
        for i in range(2)
    ]
    await asyncio.gather(
        *(oa.chat.completions.create(model="data-engineer", messages=m) for m in follow_ups)
    )
    rooms = await api_rooms(alice)
    assert len(rooms) == 2
    for room in rooms:
        contents = [m["content"] for m in await room_messages(alice, room["id"])]
        assert len(contents) == 4
        assert contents[:2] == [question["content"], answer["content"]]
        assert sum(c.startswith("Variant") for c in contents) == 1


BAD_BODIES: list[tuple[dict[str, Any], str]] = [
    ({"model": "architect", "messages": []}, "messages"),
    ({"model": "architect"}, "messages"),
    ({"model": "architect", "messages": [{"role": "tool", "content": "x"}]}, "messages.0.role"),
    ({"model": "architect", "messages": [{"role": "robot", "content": "x"}]}, "messages.0.role"),
    ({"model": "architect", "messages": [{"role": "user"}]}, "messages.0.content"),
    (
        {
            "model": "architect",
            "messages": [
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}
            ],
        },
        "messages.0.content",
    ),
    ({"model": "architect", "messages": [{"role": "assistant", "content": "hi"}]}, ""),
    ({"model": "architect", "messages": [{"role": "user", "content": "hi"}], "n": 2}, ""),
    (
        {
            "model": "architect",
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function"}],
        },
        "",
    ),
    ({"model": "architect", "messages": [{"role": "user", "content": "hi"}], "top_k": 3}, "top_k"),
    (
        {"model": "architect", "messages": [{"role": "user", "content": "hi"}], "temperature": 9},
        "temperature",
    ),
    ({"model": "", "messages": [{"role": "user", "content": "hi"}]}, "model"),
]


async def test_bad_requests_are_400_in_the_openai_error_shape_and_store_nothing(client):
    alice = await signup(client)
    for body, param in BAD_BODIES:
        response = await alice.post("/v1/chat/completions", json=body)
        assert response.status_code == 400, (body, response.text)
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert error["type"] == "invalid_request_error"
        assert (error["param"] or "").startswith(param), (body, error)
    malformed = await alice.post(
        "/v1/chat/completions", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert malformed.status_code == 400
    assert malformed.json()["error"]["code"] == "malformed_json"
    blank = await alice.post(
        "/v1/chat/completions",
        json={"model": "architect", "messages": [{"role": "user", "content": "   "}]},
    )
    assert blank.status_code == 400 and blank.json()["error"]["code"] == "empty_content"
    huge = await alice.post(
        "/v1/chat/completions",
        json={"model": "architect", "messages": [{"role": "user", "content": "x" * 20_000}]},
    )
    assert huge.status_code == 413 and huge.json()["error"]["code"] == "content_too_large"
    unknown = await alice.post(
        "/v1/chat/completions",
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "model_not_found"
    assert unknown.json()["error"]["type"] == "invalid_request_error"
    assert await api_rooms(alice) == []


async def test_requests_without_valid_credentials_are_401_in_the_openai_shape(api_url, client):
    body = {"model": "architect", "messages": [{"role": "user", "content": "hi"}]}
    for headers in ({}, {"Authorization": "Bearer iaf_not-a-real-key"}):
        for method, url in (("POST", "/v1/chat/completions"), ("GET", "/v1/models")):
            response = await client.request(method, url, json=body, headers=headers)
            assert response.status_code == 401
            assert response.json()["error"]["type"] == "authentication_error"
    oa = AsyncOpenAI(base_url=f"{api_url}/v1", api_key="iaf_wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        await oa.models.list()


async def test_retried_llm_calls_are_not_repeated_and_a_final_failure_is_an_error_event(
    api_url, client, sessionmaker
):
    alice = await signup(client)
    oa = await sdk(api_url, alice)
    stream = await oa.chat.completions.create(
        model="tester",
        messages=[{"role": "user", "content": "[offline: fail-after=3] Write test cases"}],
        stream=True,
    )
    received: list[Any] = []
    with pytest.raises(openai.APIError) as failed:
        async for chunk in stream:
            received.append(chunk)
    assert "did not answer" in failed.value.message
    content = "".join(c.choices[0].delta.content or "" for c in received if c.choices)
    assert content and "(offline model) As ".startswith(content)
    reply_id = reply_id_of(received[0].id)
    assert (await wait_status(sessionmaker, reply_id, "error"))["status"] == "error"
    async with sessionmaker() as session:
        attempts, stream_events = (
            await session.execute(
                text(
                    "SELECT stream_attempt, (SELECT count(*) FROM room_events WHERE type IN"
                    " ('agent.delta', 'agent.reset') AND data->>'reply_id' = :r)"
                    " FROM agent_runs WHERE reply_id = :r"
                ),
                {"r": reply_id},
            )
        ).one()
    # Three attempts streamed the same start; the client got it once. The reply is over: its
    # stream events are gone (a finished reply keeps no second copy of its text).
    assert (attempts, stream_events) == (3, 0)


async def test_a_non_streaming_failure_maps_to_an_http_error(api_url, client):
    alice = await signup(client)
    oa = await sdk(api_url, alice)
    with pytest.raises(openai.APIStatusError) as failed:
        await oa.chat.completions.create(
            model="pm", messages=[{"role": "user", "content": "[offline: fail] Plan the sprint"}]
        )
    assert failed.value.status_code == 502
    assert failed.value.code == "llm_failed"


async def test_a_caller_without_credits_gets_402(api_url, client, sessionmaker):
    alice = await signup(client)
    async with sessionmaker() as session:
        ledger = LedgerRepository(session)
        balance = await ledger.balance(uuid.UUID(alice.id))
        await ledger.append(uuid.UUID(alice.id), -balance, "test", "test-drain", str(uuid.uuid4()))
        await session.commit()
    oa = await sdk(api_url, alice)
    with pytest.raises(openai.APIStatusError) as refused:
        await oa.chat.completions.create(
            model="pm", messages=[{"role": "user", "content": "Plan the sprint"}]
        )
    assert refused.value.status_code == 402
    assert refused.value.code == "insufficient_credits"


async def test_a_client_that_disconnects_cancels_its_reply(client, sessionmaker):
    alice = await signup(client)
    body = {
        "model": "writer",
        "stream": True,
        "messages": [{"role": "user", "content": "[offline: slow=4] Write a long guide"}],
    }
    request = client.build_request("POST", "/v1/chat/completions", json=body, headers=alice.headers)
    response = await client.send(request, stream=True)
    completion_id = None
    async for line in response.aiter_lines():
        if line.startswith("data: {"):
            chunk = json.loads(line.removeprefix("data: "))
            completion_id = chunk["id"]
            if chunk["choices"][0]["delta"].get("content"):
                break
    await response.aclose()
    assert completion_id is not None
    row = await wait_status(sessionmaker, reply_id_of(completion_id), "cancelled")
    assert row["status"] == "cancelled"


async def test_a_reply_slower_than_the_limit_is_a_504_and_is_cancelled(
    settings: Settings, sessionmaker
):
    patient = settings.model_copy(update={"openai_reply_timeout_seconds": 1.0})
    async with serve_api(patient) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        alice = await signup(http)
        response = await alice.post(
            "/v1/chat/completions",
            json={
                "model": "ux",
                "messages": [{"role": "user", "content": "[offline: slow=1] Review onboarding"}],
            },
        )
        assert response.status_code == 504
        assert response.json()["error"]["code"] == "timeout"
        [room] = await api_rooms(alice)
        [question] = await room_messages(alice, room["id"])
        reply_id = f"reply-{question['id']}-ux"
        assert (await wait_status(sessionmaker, reply_id, "cancelled"))["status"] == "cancelled"
