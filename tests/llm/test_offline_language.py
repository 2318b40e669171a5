"""The offline model answers in the language of the question it answers, deterministically."""

from __future__ import annotations

import pytest

from iaf.agents.context import ROOM_NOTE
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
