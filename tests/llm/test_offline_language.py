"""The offline model answers in the language of the question it answers, deterministically."""

from __future__ import annotations

import pytest

from iaf.agents.context import ROOM_NOTE, build_messages
from iaf.agents.registry import get_registry
from iaf.llm.offline import compose_answer, detect_language

SYSTEM = {"role": "system", "content": "You are the Architect (@architect), precise."}


@pytest.mark.parametrize(
    ("question", "language", "phrase"),
    [
        ("What should we build first?", "en", "I found no knowledge"),
        ("Que devons-nous construire en premier ?", "fr", "je n'ai trouvé aucune connaissance"),
        ("Résumé du projet", "fr", "je n'ai trouvé aucune connaissance"),
        ("ما الذي يجب أن نبنيه أولاً؟", "ar", "لم أجد أي معرفة"),
    ],
)
def test_the_reply_is_in_the_language_of_the_question(question, language, phrase):
    assert detect_language(question) == language
    first = compose_answer([SYSTEM, {"role": "user", "content": question}])
    assert phrase in first
    assert compose_answer([SYSTEM, {"role": "user", "content": question}]) == first


def test_the_persona_prompt_asks_for_the_language_of_the_message():
    assert "language of the message" in ROOM_NOTE


def test_the_markdown_marker_adds_every_block_the_client_renders():
    answer = compose_answer([SYSTEM, {"role": "user", "content": "plan [offline: markdown]"}])
    assert "## Plan" in answer and "```python" in answer and "](https://" in answer


def test_each_agent_answers_in_its_role():
    """Every persona's answer says its role and what it looks at, so nineteen agents asked
    the same question give nineteen different answers."""
    context = {"question": {"message_id": 1, "text": "How do we start the new billing service?"}}
    answers = {}
    for persona in get_registry():
        answer = compose_answer(build_messages(context, persona))
        assert f"My role: {persona.role}." in answer, persona.id
        assert f"I look first at: {'; '.join(persona.focus)}." in answer, persona.id
        answers[persona.id] = answer
    assert len(set(answers.values())) == len(answers) == 19


def test_the_role_is_said_in_the_language_of_the_question():
    persona = get_registry().get("qa")
    assert persona is not None
    context = {"question": {"message_id": 1, "text": "Comment tester la facturation ?"}}
    answer = compose_answer(build_messages(context, persona))
    assert f"Mon rôle : {persona.role}." in answer
    assert "Je regarde d'abord :" in answer


def test_a_failure_can_be_asked_of_one_agent_only():
    from iaf.llm.offline import OfflineFailure, plan_reply

    context = {"question": {"message_id": 1, "text": "status? [offline: fail-for=tester]"}}
    registry = get_registry()
    plan_reply(build_messages(context, registry.get("architect")), 0.0, "offline/x")
    with pytest.raises(OfflineFailure):
        plan_reply(build_messages(context, registry.get("tester")), 0.0, "offline/x")
