"""Pick an agent for a message that mentions none (seed section 6.4).

Keyword routing is the cheap first pass: each persona's `keywords` are matched against the
message. A keyword matches at word boundaries, case- and accent-insensitively; a trailing
`*` makes it a stem (`scalab*` matches "scalability"), otherwise an optional plural `s` is
allowed; spaces in a keyword match any run of spaces or hyphens. When a longer keyword's
match contains a shorter one's ("design system" vs "design"), only the longer counts. An
agent's score is the number of distinct places in the text its keywords matched.

The result is ambiguous when the best score is shared by several agents, or when nothing
matched but the message is a question; the workflow then asks an LLM with
`build_classifier_prompt` and reads the answer with `parse_classifier_answer`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass, field
from functools import lru_cache

from iaf.agents.registry import AgentRegistry

#: The offline LLM recognises this marker and answers with an agent id (see iaf.llm.offline).
CLASSIFY_MARKER = "[task: classify]"

_QUESTION_WORDS_TEXT = (
    "what how why who whom whose when where which can could should would will shall is are "
    "am was were do does did may might must any "
    "quoi comment pourquoi qui quand ou quel quelle quels quelles combien est-ce peux peut "
    "pouvez faut"
)
_QUESTION_WORDS = frozenset(_QUESTION_WORDS_TEXT.split())


@dataclass(frozen=True)
class IntentResult:
    """Routing decision; `agent_id` is set only when one agent clearly wins."""

    agent_id: str | None
    ambiguous: bool
    scores: dict[str, int] = field(default_factory=dict)
    candidates: tuple[str, ...] = ()


def fold(text: str) -> str:
    """Lowercase and strip accents, so "Déploiement" matches the keyword "deploi*"."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@lru_cache(maxsize=1024)
def _keyword_pattern(keyword: str) -> re.Pattern[str]:
    stem = keyword.endswith("*")
    words = [re.escape(w) for w in fold(keyword.rstrip("*")).split()]
    body = r"[\s-]+".join(words)
    tail = r"\w*" if stem else r"s?(?!\w)"
    return re.compile(rf"(?<!\w){body}{tail}")


def route_by_keywords(text: str, registry: AgentRegistry) -> IntentResult:
    """Score every agent by keyword hits and decide whether one clearly wins."""
    folded = fold(text)
    matches: list[tuple[int, int, str]] = []
    for persona in registry:
        for keyword in persona.keywords:
            for m in _keyword_pattern(keyword).finditer(folded):
                matches.append((m.start(), m.end(), persona.id))
    spans: dict[str, set[tuple[int, int]]] = {}
    for start, end, agent_id in _outermost(matches):
        spans.setdefault(agent_id, set()).add((start, end))
    scores = {a: len(s) for a, s in sorted(spans.items(), key=lambda kv: (-len(kv[1]), kv[0]))}
    if not scores:
        return IntentResult(None, ambiguous=is_question(text), scores={})
    best = max(scores.values())
    top = tuple(a for a, s in scores.items() if s == best)
    if len(top) > 1:
        return IntentResult(None, ambiguous=True, scores=scores, candidates=top)
    return IntentResult(top[0], ambiguous=False, scores=scores, candidates=top)


def _outermost(matches: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Drop matches whose span lies strictly inside another match's span."""
    kept: list[tuple[int, int, str]] = []
    ordered = sorted(matches, key=lambda m: (m[0], -m[1], m[2]))
    max_end = -1  # furthest end among earlier, different spans
    group_end = -1
    previous: tuple[int, int] | None = None
    for start, end, agent_id in ordered:
        if (start, end) != previous:
            max_end = max(max_end, group_end)
            previous, group_end = (start, end), end
        if max_end < end:
            kept.append((start, end, agent_id))
    return kept


def is_question(text: str) -> bool:
    """A question mark, or a first word that usually opens a question."""
    stripped = text.strip()
    if stripped.endswith("?"):
        return True
    words = re.findall(r"[\w'-]+", fold(stripped))
    return bool(words) and words[0].split("'")[0] in _QUESTION_WORDS


def build_classifier_prompt(
    text: str, registry: AgentRegistry, candidates: Collection[str] | None = None
) -> list[dict[str, str]]:
    """Chat messages asking a small LLM which agent should answer `text`.

    `candidates` narrows the list (e.g. the agents tied in keyword routing).
    """
    personas = [p for p in registry if candidates is None or p.id in candidates]
    lines = [
        f"- {p.id}: {p.name}, {p.role}. {p.description} Keywords: {', '.join(p.keywords)}"
        for p in personas
    ]
    system = "\n".join(
        [
            f"{CLASSIFY_MARKER} You route chat messages to the one agent best suited to answer.",
            "Agents:",
            *lines,
            "Answer with only the agent id from the list above, or none if no agent fits.",
        ]
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": text}]


def parse_classifier_answer(answer: str, registry: AgentRegistry) -> str | None:
    """The agent id in a classifier's answer, tolerating `@`, quotes, names and chatter."""
    cleaned = answer.strip().strip("`'\".").lstrip("@").strip().lower()
    by_name = {p.name.lower(): p.id for p in registry}
    if cleaned in registry:
        return cleaned
    if cleaned.startswith("none"):
        return None
    if cleaned in by_name:
        return by_name[cleaned]
    tokens: list[str] = re.findall(r"[a-z0-9]+(?:-[a-z0-9]+)*", cleaned)
    return next((token for token in tokens if token in registry), None)
