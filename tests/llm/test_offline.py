"""The offline provider, always called through litellm so the real code path is covered."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator
from typing import Any

import litellm
import openai
import pytest
from litellm.exceptions import APIConnectionError

import iaf.llm.offline as offline_module
from iaf.agents.intent import build_classifier_prompt
from iaf.agents.mentions import parse_mentions
from iaf.agents.registry import get_registry
from iaf.llm.offline import (
    DEFAULT_MODEL,
    FAIL_MARKER,
    OfflineLLM,
    extract_sources,
    register_offline_provider,
    reset_offline_state,
    split_tokens,
)

Messages = list[dict[str, Any]]


@pytest.fixture(autouse=True)
def offline() -> Iterator[OfflineLLM]:
    handler = register_offline_provider(tokens_per_second=0.0)
    reset_offline_state()
    yield handler
    register_offline_provider(tokens_per_second=0.0)


def architect_with_sources(question: str) -> Messages:
    architect = get_registry().get("architect")
    assert architect is not None
    context = (
        "Knowledge:\n"
        "[source: Handbook]\n"
        "Our API runs on three replicas behind a load balancer. The cafeteria opens at nine.\n\n"
        "[source: ADR-7]\nWe store sessions in PostgreSQL for durability.\n[/source]\n"
        "[source: Handbook]\nThe office has a garden.\n\n"
        "[source: Lunch menu]\nSoup on Mondays, fish on Fridays."
    )
    return [
        {"role": "system", "content": f"{architect.system_prompt}\n\n{context}"},
        {"role": "user", "content": question},
    ]


async def complete(messages: Messages, **kwargs: Any) -> Any:
    return await litellm.acompletion(
        model=DEFAULT_MODEL, messages=messages, num_retries=0, **kwargs
    )


async def stream_text(messages: Messages, **kwargs: Any) -> tuple[list[str], Any, str | None]:
    stream = await complete(messages, stream=True, **kwargs)
    deltas: list[str] = []
    usage = finish = None
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            deltas.append(chunk.choices[0].delta.content)
        if chunk.choices and chunk.choices[0].finish_reason:
            finish = chunk.choices[0].finish_reason
        usage = getattr(chunk, "usage", None) or usage
    return deltas, usage, finish


def words(messages: Messages) -> int:
    return sum(len(str(m["content"]).split()) for m in messages)


async def test_answer_is_deterministic_and_cites_relevant_sources() -> None:
    messages = architect_with_sources("How many replicas does the API run on?")
    first = await complete(messages)
    second = await complete(messages)
    text = first.choices[0].message.content
    assert text == second.choices[0].message.content
    assert text.startswith("(offline model) As the Architect")
    assert "How many replicas does the API run on?" in text
    lines = text.splitlines()
    assert (
        lines[1] == '- "Our API runs on three replicas behind a load balancer." [source: Handbook]'
    )
    assert "[source: ADR-7]" in text and "[source: Lunch menu]" in text
    assert text.count("[source: Handbook]") == 1  # one quote per label
    assert first.choices[0].finish_reason == "stop"


async def test_usage_counts_words() -> None:
    messages = architect_with_sources("How many replicas?")
    response = await complete(messages)
    text = response.choices[0].message.content
    assert response.usage.prompt_tokens == words(messages)
    assert response.usage.completion_tokens == len(text.split())
    assert response.usage.total_tokens == words(messages) + len(text.split())


async def test_stream_matches_completion_word_by_word() -> None:
    messages = architect_with_sources("How many replicas does the API run on?")
    expected = (await complete(messages)).choices[0].message.content
    deltas, usage, finish = await stream_text(messages, stream_options={"include_usage": True})
    assert "".join(deltas) == expected
    assert deltas == split_tokens(expected)
    assert all(len(d.split()) == 1 for d in deltas)
    assert usage is not None
    assert usage.completion_tokens == len(deltas)
    assert usage.prompt_tokens == words(messages)
    assert finish == "stop"


async def test_no_sources_says_so_in_the_persona_voice() -> None:
    devops = get_registry().get("devops")
    assert devops is not None
    messages = [
        {"role": "system", "content": devops.system_prompt},
        {"role": "user", "content": "Why is the build red?"},
    ]
    text = (await complete(messages)).choices[0].message.content
    assert text.startswith('(offline model) As DevOps, on "Why is the build red?"')
    assert "found no knowledge" in text
    assert "[source:" not in text


async def test_at_most_three_sources_most_relevant_first() -> None:
    blocks = "\n\n".join(f"[source: doc-{i}]\nFiller sentence number {i}." for i in range(5))
    blocks += "\n\n[source: doc-9]\nThe retention period for invoices is ten years."
    messages = [
        {"role": "system", "content": "You are a helper."},
        {"role": "user", "content": f"{blocks}\n\nWhat is the invoice retention period?"},
    ]
    text = (await complete(messages)).choices[0].message.content
    cited = [line.rsplit("[source: ", 1)[1].rstrip("]") for line in text.splitlines()[1:]]
    assert cited == ["doc-9", "doc-0", "doc-1"]
    assert '"The retention period for invoices is ten years."' in text
    assert "What is the invoice retention period?" in text.splitlines()[0]
    assert "Filler" not in text.splitlines()[0]  # sources are not part of the question


async def test_list_content_parts_are_read() -> None:
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "[source: Wiki]\nDeploys happen on Tuesdays."},
                {"type": "text", "text": "When do deploys happen?"},
            ],
        }
    ]
    text = (await complete(messages)).choices[0].message.content
    assert '- "Deploys happen on Tuesdays." [source: Wiki]' in text


async def test_reply_mentions_nobody_unless_handing_off() -> None:
    messages = architect_with_sources("@pm and @developer: thoughts? email me at a@b.co")
    messages[0]["content"] += "\n[source: Notes]\nPing @tester about replicas."
    text = (await complete(messages)).choices[0].message.content
    assert parse_mentions(text, get_registry().ids()) == []


async def test_handoff_line_and_chain() -> None:
    registry = get_registry()
    question = "Please ask @tester to review it, then ask @pm for a date."
    developer = registry.get("developer")
    tester = registry.get("tester")
    assert developer is not None and tester is not None

    first = [
        {"role": "system", "content": developer.system_prompt},
        {"role": "user", "content": question},
    ]
    reply = (await complete(first)).choices[0].message.content
    assert reply.splitlines()[-1] == "Handing off to @tester."
    assert [m.id for m in parse_mentions(reply, registry.ids())] == ["tester"]

    second = [
        {"role": "system", "content": tester.system_prompt},
        {"role": "assistant", "content": reply},
        {"role": "user", "content": question},
    ]
    reply2 = (await complete(second)).choices[0].message.content
    assert reply2.splitlines()[-1] == "Handing off to @pm."


async def test_handoff_never_targets_itself() -> None:
    tester = get_registry().get("tester")
    assert tester is not None
    messages = [
        {"role": "system", "content": tester.system_prompt},
        {"role": "user", "content": "hand off to @tester"},
    ]
    text = (await complete(messages)).choices[0].message.content
    assert "Handing off" not in text


async def test_classify_marker_answers_with_an_agent_id() -> None:
    registry = get_registry()
    for text, expected in [
        ("the deployment pipeline on kubernetes is down", "devops"),
        ("please write a readme", "writer"),
        ("blah blah", "none"),
    ]:
        response = await complete(build_classifier_prompt(text, registry))
        assert response.choices[0].message.content == expected


async def test_fail_marker_raises_connection_error() -> None:
    messages = [{"role": "user", "content": f"hello {FAIL_MARKER}"}]
    with pytest.raises(APIConnectionError, match="failure requested"):
        await complete(messages)
    with pytest.raises(openai.APIError, match="failure requested"):
        await stream_text(messages)


async def test_fail_after_streams_some_tokens_then_raises() -> None:
    messages = [{"role": "user", "content": "tell me a story [offline: fail-after=3]"}]
    stream = await complete(messages, stream=True)
    received: list[str] = []
    with pytest.raises(openai.APIError, match="after 3 tokens"):
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)
    assert received == ["(offline ", "model) ", "As "]
    with pytest.raises(APIConnectionError):
        await complete(messages)


async def test_fail_once_fails_only_the_first_attempt() -> None:
    messages = [{"role": "user", "content": "retry me [offline: fail-once=job-1]"}]
    with pytest.raises(APIConnectionError):
        await complete(messages)
    assert "retry me" in (await complete(messages)).choices[0].message.content
    reset_offline_state()
    with pytest.raises(APIConnectionError):
        await complete(messages)


def test_markers_are_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "sleep", lambda _delay: None)
    response = litellm.completion(
        model=DEFAULT_MODEL,
        messages=[{"role": "user", "content": "hi [offline: slow=1000]"}],
        num_retries=0,
    )
    text = response.choices[0].message.content
    assert 'on "hi":' in text
    assert "offline:" not in text


class SleepRecorder:
    def __init__(self) -> None:
        self.delays: list[float] = []


@pytest.fixture
def async_sleeps(monkeypatch: pytest.MonkeyPatch) -> SleepRecorder:
    recorder = SleepRecorder()
    real_sleep = asyncio.sleep

    async def fake_sleep(delay: float, result: Any = None) -> Any:
        # Only the provider's sleeps: other tasks of the shared test loop sleep for real.
        if sys._getframe(1).f_code.co_filename != offline_module.__file__:
            return await real_sleep(delay, result)
        recorder.delays.append(delay)
        return await real_sleep(0, result)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    return recorder


async def test_stream_rate_limit_sleeps_between_tokens(async_sleeps: SleepRecorder) -> None:
    register_offline_provider(tokens_per_second=50.0)
    deltas, _, _ = await stream_text([{"role": "user", "content": "How fast are you?"}])
    assert async_sleeps.delays.count(1 / 50.0) == len(deltas) - 1


async def test_slow_marker_overrides_the_rate(async_sleeps: SleepRecorder) -> None:
    messages = [{"role": "user", "content": "Slowly please [offline: slow=4]"}]
    deltas, _, _ = await stream_text(messages)
    assert async_sleeps.delays.count(0.25) == len(deltas) - 1
    assert "offline:" not in "".join(deltas)


async def test_no_rate_means_no_sleeps(async_sleeps: SleepRecorder) -> None:
    await stream_text([{"role": "user", "content": "Quick one"}])
    assert not [d for d in async_sleeps.delays if d > 0]


async def test_non_streaming_sleeps_once_for_the_whole_reply(async_sleeps: SleepRecorder) -> None:
    register_offline_provider(tokens_per_second=10.0)
    response = await complete([{"role": "user", "content": "How fast?"}])
    tokens = response.usage.completion_tokens
    assert [d for d in async_sleeps.delays if d > 0] == [pytest.approx((tokens - 1) / 10.0)]


def test_sync_paths_and_sync_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    delays: list[float] = []
    monkeypatch.setattr(time, "sleep", delays.append)
    register_offline_provider(tokens_per_second=20.0)
    messages = architect_with_sources("How many replicas does the API run on?")
    whole = litellm.completion(model=DEFAULT_MODEL, messages=messages, num_retries=0)
    chunks = litellm.completion(model=DEFAULT_MODEL, messages=messages, num_retries=0, stream=True)
    deltas = [c.choices[0].delta.content for c in chunks if c.choices[0].delta.content]
    assert "".join(deltas) == whole.choices[0].message.content
    assert delays.count(1 / 20.0) == len(deltas) - 1


async def test_max_tokens_truncates_with_length_finish() -> None:
    messages = [{"role": "user", "content": "Tell me everything"}]
    response = await complete(messages, max_tokens=4)
    assert response.choices[0].message.content == "(offline model) As the "
    assert response.choices[0].finish_reason == "length"
    assert response.usage.completion_tokens == 4
    deltas, _, finish = await stream_text(messages, max_tokens=4)
    assert len(deltas) == 4 and finish == "length"


def test_register_is_idempotent(offline: OfflineLLM) -> None:
    again = register_offline_provider(tokens_per_second=7.0)
    assert again is offline
    assert again.tokens_per_second == 7.0
    entries = [p for p in litellm.custom_provider_map if p["provider"] == offline_module.PROVIDER]
    assert len(entries) == 1


def test_extract_sources_block_rules() -> None:
    text = (
        "intro\n[source: A]\nline one\nline two\n\nafter A\n"
        "[Source: B]\npara one\n\npara two\n[/source]\ntail\n[source: C]   \n"
    )
    sources, rest = extract_sources(text)
    assert [(s.label, s.text) for s in sources] == [
        ("A", "line one\nline two"),
        ("B", "para one\n\npara two"),
    ]
    assert rest.split() == ["intro", "after", "A", "tail"]


def test_a_slow_marker_cannot_stall_a_worker():
    """Anyone can write the marker: it slows the model, never below MIN_MARKED_RATE."""
    crawl = [{"role": "user", "content": "[offline: slow=0.001] hello"}]
    assert (
        offline_module.plan_reply(crawl, 0.0, "offline/iaf-offline").tokens_per_second
        == offline_module.MIN_MARKED_RATE
    )
    quick = [{"role": "user", "content": "[offline: slow=40] hello"}]
    assert offline_module.plan_reply(quick, 0.0, "offline/iaf-offline").tokens_per_second == 40
    plain = [{"role": "user", "content": "hello"}]
    assert offline_module.plan_reply(plain, 0.0, "offline/iaf-offline").tokens_per_second == 0
