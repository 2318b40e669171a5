"""Keyword intent routing and the LLM classifier prompt/answer helpers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iaf.agents.intent import (
    CLASSIFY_MARKER,
    build_classifier_prompt,
    is_question,
    parse_classifier_answer,
    route_by_keywords,
)
from iaf.agents.registry import AgentPersona, AgentRegistry, get_registry

CLEAR = {
    "architect": "How should we design the system so it can scale?",
    "developer": "There's a bug in this function, here is the traceback",
    "tester": "We need more test coverage for the login flow",
    "writer": "Please update the README with a short guide",
    "devops": "Deploy it with docker on kubernetes",
    "security": "Is our password storage safe against this attack?",
    "data-engineer": "Write an SQL query against the warehouse schema",
    "scrum-master": "Let's prepare the retrospective and check our velocity",
    "ux": "Plan a usability test with five user interviews",
    "designer": "Rework the colours and typography of this screen",
    "analyst": "What is the revenue forecast per KPI?",
    "pm": "Update the roadmap and the milestones for Q3",
}


def make(agent_id: str, keywords: list[str]) -> AgentPersona:
    return AgentPersona(
        id=agent_id,
        name=agent_id.title(),
        description="d",
        role="r",
        category="engineering",
        system_prompt="p",
        keywords=tuple(keywords),
    )


@pytest.mark.parametrize(("agent_id", "text"), sorted(CLEAR.items()))
def test_clear_messages_route_to_one_agent(agent_id: str, text: str) -> None:
    result = route_by_keywords(text, get_registry())
    assert result.agent_id == agent_id
    assert not result.ambiguous
    assert max(result.scores, key=lambda a: result.scores[a]) == agent_id


def test_every_keyword_reaches_its_persona() -> None:
    registry = get_registry()
    for persona in registry:
        for keyword in persona.keywords:
            result = route_by_keywords(f"about {keyword.rstrip('*')} today", registry)
            assert persona.id in result.scores, (persona.id, keyword)


def test_ties_are_ambiguous_with_candidates() -> None:
    registry = AgentRegistry([make("a", ["deploy*"]), make("b", ["readme"]), make("c", ["x"])])
    result = route_by_keywords("a README about deployment", registry)
    assert result.agent_id is None
    assert result.ambiguous
    assert result.candidates == ("a", "b")
    assert result.scores == {"a": 1, "b": 1}


def test_no_hit_question_is_ambiguous_statement_is_not() -> None:
    registry = get_registry()
    question = route_by_keywords("what do you think?", registry)
    assert question.agent_id is None and question.ambiguous and question.scores == {}
    statement = route_by_keywords("thanks, see you tomorrow", registry)
    assert statement.agent_id is None and not statement.ambiguous


def test_longer_keyword_wins_over_the_words_it_contains() -> None:
    result = route_by_keywords("We need a design system", get_registry())
    assert result.agent_id == "designer"
    assert "architect" not in result.scores


def test_stems_plurals_accents_and_word_boundaries() -> None:
    registry = AgentRegistry(
        [make("a", ["scalab*", "bug", "how to"]), make("b", ["test*", "deploi*"])]
    )
    assert route_by_keywords("Scalability matters", registry).scores == {"a": 1}
    assert route_by_keywords("two BUGS", registry).scores == {"a": 1}
    assert route_by_keywords("How-to guide", registry).scores == {"a": 1}
    assert route_by_keywords("le Déploiement", registry).scores == {"b": 1}
    assert route_by_keywords("debugging the latest contest", registry).scores == {}


def test_score_counts_places_not_duplicate_keywords() -> None:
    registry = AgentRegistry([make("a", ["architect*", "architecture"])])
    assert route_by_keywords("architecture", registry).scores == {"a": 1}
    assert route_by_keywords("architecture and architects", registry).scores == {"a": 2}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Is it done", True),
        ("can you help", True),
        ("Comment faire ?", True),
        ("Pourquoi pas", True),
        ("done.", False),
        ("", False),
        ("   ?  ", True),
    ],
)
def test_is_question(text: str, expected: bool) -> None:
    assert is_question(text) is expected


@settings(deadline=None, max_examples=200)
@given(st.text(max_size=300))
def test_routing_never_raises_and_is_consistent(text: str) -> None:
    result = route_by_keywords(text, get_registry())
    assert all(score > 0 for score in result.scores.values())
    if result.agent_id is not None:
        assert not result.ambiguous
        assert result.scores[result.agent_id] == max(result.scores.values())
    assert route_by_keywords(text, get_registry()) == result


def test_classifier_prompt_lists_agents_and_marker() -> None:
    registry = get_registry()
    messages = build_classifier_prompt("deploy please", registry)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert CLASSIFY_MARKER in messages[0]["content"]
    assert messages[1]["content"] == "deploy please"
    for agent_id in registry.ids():
        assert f"\n- {agent_id}: " in messages[0]["content"]


def test_classifier_prompt_can_be_narrowed() -> None:
    system = build_classifier_prompt("x", get_registry(), candidates=["pm", "devops"])[0]
    listed = [line for line in system["content"].splitlines() if line.startswith("- ")]
    assert [line.split(":")[0] for line in listed] == ["- devops", "- pm"]


def test_classifier_prompt_matches_the_offline_model_marker() -> None:
    from iaf.llm.offline import CLASSIFY_MARKER as OFFLINE_MARKER

    assert OFFLINE_MARKER == CLASSIFY_MARKER


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("devops", "devops"),
        ("  @DevOps. ", "devops"),
        ("`scrum-master`", "scrum-master"),
        ("Scrum Master", "scrum-master"),
        ("The best agent is data-engineer.", "data-engineer"),
        ("none", None),
        ("None of them; maybe pm", None),
        ("I cannot tell", None),
        ("", None),
    ],
)
def test_parse_classifier_answer(answer: str, expected: str | None) -> None:
    assert parse_classifier_answer(answer, get_registry()) == expected
