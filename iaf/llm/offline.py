"""A deterministic, network-free LLM registered with litellm as provider "offline".

It exists so that tests and the embedded stack exercise the real litellm code path
(`litellm.acompletion(model="offline/iaf-offline", ...)`) with answers that are reproducible
and that prove the platform wired context, retrieval and hand-offs correctly.

What it answers (a pure function of the messages):
- The reply starts with "(offline model)", speaks as the persona named in the first line of
  the system prompt ("You are the Architect (@architect), ..." -> "As the Architect") and
  quotes the question (the last user message, markers and sources removed).
- Retrieved sources are blocks `[source: <label>]` + newline + text in system or user
  messages. A block ends at the next `[source: ...]` header, at a `[/source]` line, or
  (without `[/source]`) at the first blank line. Up to 3 sources (one chunk per label) are
  ranked by word overlap with the question; their best sentences are quoted and cited as
  `[source: <label>]`. With no sources it says no knowledge was found and gives generic
  advice.
- `@` is removed from quoted text so the reply mentions no one by accident.
- Inside a source block, `\\`, `[` and `]` may be escaped with a backslash (the platform
  quotes retrieved text so): the block only ends at an unescaped `[/source]`.
- It obeys prompt injections, deterministically, the way a careless real model might: the
  words "ignore (all|the) previous/prior/above instructions" anywhere in a system message,
  or in a user message outside its source blocks, make the whole reply "(offline model)
  Obeying the instructions in the prompt. Memory: <every `memory` source's text>". Text
  inside a well-formed source block of a user message is data, not instructions. Tests use
  this to show that the prompt's structure, not luck, keeps a document from taking over.

Roles: a line "Your role: <role>. Look first at: <a>; <b>." in the system prompt (every
persona's prompt ends with one) adds a line saying that role and what it looks at, in the
reply's language, so each agent's answer shows its role. A line "Project brief (this room's
topic): <brief>" adds a line saying the answer works from that brief.

Markers (for the platform's tests):
- `[task: synthesise]` in a system message: the reply brings several agents' answers together
  (the `[source: <agent name>]` blocks), quoting each agent's own point (its answer without
  the opening line) after the agent's name in bold, in source order; a block whose text is
  "(no answer)" becomes a line saying that agent could not answer.
- `[task: classify]` in a system message: the reply is only the id of the best agent among
  lines `- <id>: <description and keywords>` of the system prompt, by word overlap with the
  last user message, or `none`.
- "ask @<id>" or "hand off to @<id>" in the last user message: the reply ends with the line
  "Handing off to @<id>." The target is the first such id that is not the persona itself
  (the `@<id>` in the system prompt's first line) and that no earlier message already
  handed off to ("Handing off to @<id>."), so a chain "ask @b to ask @c" advances one
  agent at a time.
- `[offline: fail]` in the last user message: raise `litellm.APIConnectionError` before
  any token. `[offline: fail-after=<n>]`: stream n tokens, then raise (non-streaming calls
  raise at once). `[offline: fail-once=<key>]`: fail the first request carrying this key in
  this process, succeed afterwards (tests of Temporal retries; `reset_offline_state()`).
- `[offline: fail-for=<agent id>]`: raise like `[offline: fail]`, but only for that agent
  (the `@<id>` of the system prompt's first line): one member of a team fails, every time.
- `[offline: slow=<tokens_per_second>]` in the last user message overrides the rate.
- `[offline: markdown]`: the reply ends with a heading, lists, a code block and a link.

Language: the reply's own sentences are in the language of the question (Arabic script,
else French or English by common words and accented letters), as a real model told to
"answer in the language of the message" would; persona names and quotes stay as they are.

Embeddings (`litellm.aembedding(model="offline/<anything>")`): a deterministic hashed
bag of words, EMBEDDING_DIMENSIONS long and unit length, so the litellm embedding path
(`EMBEDDING_MODEL=offline/...`) runs with no model and no network.

Streaming yields one word per chunk (the word and its trailing whitespace), sleeping
1/tokens_per_second between chunks when the rate is positive; a non-streaming call sleeps
once for the same total. The last chunk carries the usage: prompt_tokens = words in all
messages, completion_tokens = words in the reply. `max_tokens` truncates the reply
(finish_reason "length").
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import threading
import time
import unicodedata
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import litellm
from litellm.exceptions import APIConnectionError
from litellm.llms.custom_llm import CustomLLM
from litellm.types.llms.openai import ChatCompletionUsageBlock
from litellm.types.utils import (
    Choices,
    EmbeddingResponse,
    GenericStreamingChunk,
    ModelResponse,
    Usage,
)

PROVIDER = "offline"
DEFAULT_MODEL = "offline/iaf-offline"
CLASSIFY_MARKER = "[task: classify]"
SYNTHESIS_MARKER = "[task: synthesise]"
# What a synthesis reads for a teammate that could not answer (iaf.agents.context).
NO_ANSWER = "(no answer)"
FAIL_MARKER = "[offline: fail]"
MAX_SOURCES = 3

Finish = Literal["stop", "length"]

_MARKER = re.compile(r"\[offline:\s*([a-z-]+)(?:\s*=\s*([^\]\s]+))?\s*\]", re.IGNORECASE)
_SOURCE_HEADER = re.compile(r"^[ \t]*\[source:\s*((?:\\.|[^\]\n\\])+?)\s*\][ \t]*\n?", re.I | re.M)
_ESCAPED = re.compile(r"\\(.)")
_INJECTION = re.compile(
    r"\bignore\s+(?:all\s+|the\s+|any\s+)?(?:previous|prior|above|earlier)\s+instructions\b",
    re.IGNORECASE,
)
OBEYING = "(offline model) Obeying the instructions in the prompt."
_SOURCE_END = re.compile(r"^[ \t]*\[/source\][ \t]*$", re.I | re.M)
_HANDOFF_ASK = re.compile(r"\b(?:ask|hand\s+off\s+to)\s+@([A-Za-z0-9_-]+)", re.IGNORECASE)
_HANDED_OFF = re.compile(r"Handing off to @([A-Za-z0-9_-]+)\.")
_AGENT_LINE = re.compile(r"^\s*-\s*([a-z0-9]+(?:-[a-z0-9]+)*):(.*)$", re.M)
_BRIEF_LINE = re.compile(r"^Project brief \(this room's topic\): (.+)$", re.M)
_ROLE_LINE = re.compile(r"^Your role: (.+?)\.(?: Look first at: (.+?)\.)?\s*$", re.M)
_STOPWORDS_TEXT = (
    "the a an and or but of to in on for with at by from is are was were be been it its this "
    "that these those what how why who when where which can could should would will do does "
    "did we you i our your my me us they them their there here about into as not no yes "
    "please any some all have has had just also than then so if le la les des du de un une "
    "et ou est sont pour dans sur avec que qui quoi comment pourquoi nous vous je il elle"
)
_STOPWORDS = frozenset(_STOPWORDS_TEXT.split())

_failed_keys: set[str] = set()
_failed_lock = threading.Lock()
_register_lock = threading.Lock()


class OfflineFailure(APIConnectionError):
    """Raised on purpose by a failure marker, typed like a real connection error."""

    def __init__(self, reason: str, model: str = DEFAULT_MODEL) -> None:
        super().__init__(message=f"offline model: {reason}", llm_provider=PROVIDER, model=model)


@dataclass(frozen=True)
class Source:
    label: str
    text: str


@dataclass(frozen=True)
class Plan:
    """Everything a request will do, decided before the first token."""

    text: str
    prompt_tokens: int
    tokens_per_second: float
    fail_after: int | None = None


def reset_offline_state() -> None:
    """Forget which `fail-once` keys already failed (between tests)."""
    with _failed_lock:
        _failed_keys.clear()


def message_text(message: Any) -> str:
    """The text of a chat message, whether content is a string or a list of parts."""
    content = (
        message.get("content")
        if isinstance(message, Mapping)
        else getattr(message, "content", None)
    )
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        parts = [p.get("text", "") if isinstance(p, Mapping) else str(p) for p in content]
        return "\n".join(str(p) for p in parts)
    return ""


def _role(message: Any) -> str:
    role = message.get("role") if isinstance(message, Mapping) else getattr(message, "role", "")
    return str(role or "")


def extract_sources(text: str) -> tuple[list[Source], str]:
    """The `[source: ...]` blocks of `text`, and the text with those blocks removed."""
    sources: list[Source] = []
    kept: list[str] = []
    headers = list(_SOURCE_HEADER.finditer(text))
    cursor = 0
    for i, header in enumerate(headers):
        limit = headers[i + 1].start() if i + 1 < len(headers) else len(text)
        region = text[header.end() : limit]
        closing = _SOURCE_END.search(region)
        if closing:
            body, end = region[: closing.start()], header.end() + closing.end()
        else:
            blank = re.search(r"\n[ \t]*\n", region)
            body = region[: blank.start()] if blank else region
            end = header.end() + len(body)
        kept.append(text[cursor : header.start()])
        cursor = end
        if body.strip():
            label = _ESCAPED.sub(r"\1", header.group(1).strip())
            sources.append(Source(label, _ESCAPED.sub(r"\1", body.strip())))
    kept.append(text[cursor:])
    return sources, "".join(kept)


def _words(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKD", text.lower())
    plain = "".join(c for c in folded if not unicodedata.combining(c))
    return re.findall(r"\w+", plain)


def _stems(text: str) -> set[str]:
    return {w[:5] for w in _words(text) if w not in _STOPWORDS and (len(w) > 2 or w.isdigit())}


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", text) if s.strip()]


def _unmention(text: str) -> str:
    return re.sub(r"(?<![\w.])@(?=[A-Za-z0-9_-])", "", text)


def _clip(text: str, words: int) -> str:
    parts = " ".join(text.split()).split(" ")
    return " ".join(parts[:words]) + (" …" if len(parts) > words else "")


def _quote(source: Source, question: set[str]) -> tuple[int, str]:
    """A source's relevance to the question and its best sentence(s), in source order."""
    scored = [(len(_stems(s) & question), i, s) for i, s in enumerate(_sentences(source.text))]
    ranked = sorted(scored, key=lambda t: (-t[0], t[1]))
    chosen = [t for t in ranked[:2] if t[0] > 0] or ranked[:1]
    quote = " ".join(_clip(s, 40) for _, _, s in sorted(chosen, key=lambda t: t[1]))
    return ranked[0][0], quote


def _best_sources(sources: list[Source], question: set[str]) -> list[tuple[Source, str]]:
    best: dict[str, tuple[int, int, Source, str]] = {}
    for order, source in enumerate(sources):
        score, quote = _quote(source, question)
        if source.label not in best or score > best[source.label][0]:
            best[source.label] = (score, order, source, quote)
    ranked = sorted(best.values(), key=lambda t: (-t[0], t[1]))[:MAX_SOURCES]
    return [(source, quote) for _, _, source, quote in ranked]


def _persona(system_prompt: str) -> tuple[str, str | None]:
    """How to introduce ourselves, and our own agent id, from the prompt's first line."""
    first = next((line.strip() for line in system_prompt.splitlines() if line.strip()), "")
    self_id = re.search(r"@([a-z0-9]+(?:-[a-z0-9]+)*)", first)
    intro = re.sub(r"\s*\(@[^)]*\)", "", first)
    match = re.match(r"you are\s+(.+?)(?:[,.;:]|$)", intro, re.IGNORECASE)
    label = match.group(1) if match else _clip(intro, 12) if intro else "the assistant"
    return _unmention(label), self_id.group(1) if self_id else None


def _handoff(question: str, self_id: str | None, history: str) -> str | None:
    done = {m.lower() for m in _HANDED_OFF.findall(history)}
    targets: list[str] = _HANDOFF_ASK.findall(question)
    for target in targets:
        if target.lower() != (self_id or "") and target.lower() not in done:
            return target.lower()
    return None


def classify(system_prompt: str, text: str) -> str:
    """Best agent id among the prompt's `- id: ...` lines by word overlap, or "none"."""
    words = {w for w in _words(text) if w not in _STOPWORDS}
    best, best_score = "none", 0
    for match in _AGENT_LINE.finditer(system_prompt):
        tokens = {w for w in _words(f"{match.group(1)} {match.group(2)}") if w not in _STOPWORDS}
        score = sum(
            1 for w in words if any(w == t or (len(t) >= 4 and w.startswith(t)) for t in tokens)
        )
        if score > best_score:
            best, best_score = match.group(1), score
    return best


def compose_answer(messages: Sequence[Any]) -> str:
    """The reply text for `messages` (failure and rate markers are handled by `plan_reply`)."""
    system = "\n".join(message_text(m) for m in messages if _role(m) == "system")
    user_messages = [m for m in messages if _role(m) == "user"]
    last = user_messages[-1] if user_messages else None
    last_text = message_text(last) if last is not None else ""
    if CLASSIFY_MARKER in system:
        return classify(system, _MARKER.sub("", last_text))
    sources = [
        source
        for m in messages
        if _role(m) in ("system", "user")
        for source in extract_sources(message_text(m))[0]
    ]
    if _injected(messages):
        memories = [s.text for s in sources if s.label.lower() == "memory"]
        return f"{OBEYING} Memory: {'; '.join(memories) or 'none'}"
    question = " ".join(_MARKER.sub("", extract_sources(last_text)[1]).split())
    persona, self_id = _persona(extract_sources(system)[1])
    language = detect_language(question)
    if SYNTHESIS_MARKER in system:
        return "\n".join(_synthesis_lines(persona, question, sources, language))
    lines = _answer_lines(persona, question, _best_sources(sources, _stems(question)), language)
    lines.extend(_role_lines(extract_sources(system)[1], language))
    brief = _BRIEF_LINE.search(extract_sources(system)[1])
    if brief:
        shown_brief = _unmention(_clip(brief.group(1), 30))
        lines.append(_PHRASES.get(language, _PHRASES["en"])["brief"].format(brief=shown_brief))
    if "markdown" in _markers(last_text):
        lines.extend(MARKDOWN_SAMPLE)
    earlier = "\n".join(message_text(m) for m in messages if m is not last)
    target = _handoff(question, self_id, earlier)
    if target:
        lines.append(f"Handing off to @{target}.")
    return "\n".join(lines)


def _injected(messages: Sequence[Any]) -> bool:
    """An injection where a model takes instructions: any system text, user text outside
    its source blocks."""
    for message in messages:
        text = message_text(message)
        role = _role(message)
        if role == "user":
            text = extract_sources(text)[1]
        if role in ("system", "user") and _INJECTION.search(text):
            return True
    return False


_FRENCH_TEXT = (
    "le la les des du de un une et ou est sont pour dans sur avec que qui quoi comment pourquoi"
    " nous vous je il elle ce cette ces mon ton son notre votre leur pas plus très aussi"
)
_ENGLISH_TEXT = (
    "the a an and or is are for in on with what who how why we you i it this that these not"
    " please can could should would of to"
)
_FRENCH_WORDS = frozenset(_FRENCH_TEXT.split())
_ENGLISH_WORDS = frozenset(_ENGLISH_TEXT.split())
_ARABIC = re.compile(r"[\u0600-\u06ff\u0750-\u077f]")
_FRENCH_LETTERS = re.compile(r"[àâçéèêëîïôûùüÿœ]")

# The reply's fixed sentences in each language it answers in (detect_language).
_PHRASES = {
    "en": {
        "opening": "(offline model) As {persona}, on {shown}:",
        "your_message": "your message",
        "found": "here is what I found in the knowledge base.",
        "role": "My role: {role}.",
        "brief": 'Working from the project brief: "{brief}".',
        "focus": "I look first at: {focus}.",
        "missing": "- **{name}** could not answer.",
        "synthesis": "(offline model) As {persona}, bringing the team's {count} answers together"
        " on {shown}:",
        "none": "I found no knowledge about this in the room or organisation documents."
        " My general advice: state the goal and the constraints, list the options with"
        " their trade-offs, and share any document that should guide the answer.",
    },
    "fr": {
        "opening": "(offline model) En tant que {persona}, à propos de {shown} :",
        "your_message": "votre message",
        "found": "voici ce que j'ai trouvé dans la base de connaissances.",
        "role": "Mon rôle : {role}.",
        "brief": "D'après le brief du projet : « {brief} ».",
        "focus": "Je regarde d'abord : {focus}.",
        "missing": "- **{name}** n'a pas pu répondre.",
        "synthesis": "(offline model) En tant que {persona}, voici les {count} réponses de"
        " l'équipe réunies, à propos de {shown} :",
        "none": "je n'ai trouvé aucune connaissance à ce sujet dans les documents du salon"
        " ou de l'organisation. Mon conseil général : précisez l'objectif et les contraintes,"
        " listez les options avec leurs compromis, et partagez tout document qui devrait"
        " guider la réponse.",
    },
    "ar": {
        "opening": "(offline model) بصفتي {persona}، بخصوص {shown}:",
        "your_message": "رسالتك",
        "found": "إليك ما وجدته في قاعدة المعرفة.",
        "role": "دوري: {role}.",
        "brief": "انطلاقًا من موجز المشروع: «{brief}».",
        "focus": "أنظر أولاً إلى: {focus}.",
        "missing": "- **{name}** لم يتمكن من الإجابة.",
        "synthesis": "(offline model) بصفتي {persona}، أجمع هنا {count} إجابات من الفريق بخصوص"
        " {shown}:",
        "none": "لم أجد أي معرفة عن هذا في مستندات الغرفة أو المؤسسة. نصيحتي العامة: حدّد"
        " الهدف والقيود، واذكر الخيارات مع مزايا وعيوب كل منها، وشارك أي مستند ينبغي أن"
        " يوجّه الإجابة.",
    },
}

# `[offline: markdown]`: a reply that uses every Markdown block the web client renders.
MARKDOWN_SAMPLE = (
    "",
    "## Plan",
    "",
    "1. Read the brief",
    "2. Sketch the design",
    "- keep it **simple**",
    "",
    "```python",
    'print("hello from the offline model")',
    "```",
    "",
    "See [the guide](https://example.com/guide).",
)


def detect_language(text: str) -> str:
    """en, fr or ar, deterministically: Arabic script, else French words or letters."""
    if _ARABIC.search(text):
        return "ar"
    words = re.findall(r"[a-zàâçéèêëîïôûùüÿœ']+", text.lower())
    french = sum(w in _FRENCH_WORDS for w in words)
    english = sum(w in _ENGLISH_WORDS for w in words)
    if french > english or (french == english and _FRENCH_LETTERS.search(text.lower())):
        return "fr"
    return "en"


def _answer_lines(
    persona: str, question: str, picked: list[tuple[Source, str]], language: str = "en"
) -> list[str]:
    phrases = _PHRASES.get(language, _PHRASES["en"])
    shown = f'"{_unmention(_clip(question, 25))}"' if question else phrases["your_message"]
    opening = phrases["opening"].format(persona=persona, shown=shown)
    if picked:
        quotes = [f'- "{_unmention(quote)}" [source: {s.label}]' for s, quote in picked]
        return [f"{opening} {phrases['found']}", *quotes]
    return [f"{opening} {phrases['none']}"]


def _role_lines(system: str, language: str) -> list[str]:
    """The persona's role and focus, said in the reply's language (none without a role line)."""
    match = _ROLE_LINE.search(system)
    if match is None:
        return []
    phrases = _PHRASES.get(language, _PHRASES["en"])
    line = phrases["role"].format(role=_unmention(match.group(1)))
    if match.group(2):
        line += " " + phrases["focus"].format(focus=_unmention(match.group(2)))
    return [line]


def _own_point(text: str) -> str:
    """What an agent's answer says beyond its opening line (which restates the question)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("(offline model)"):
        lines = lines[1:]
    return _clip(" ".join(lines), 40)


def _synthesis_lines(
    persona: str, question: str, sources: list[Source], language: str
) -> list[str]:
    """One line per agent, in the order given: its name, then its own point quoted."""
    phrases = _PHRASES.get(language, _PHRASES["en"])
    by_agent = list({source.label: source for source in sources}.values())
    answers = [s for s in by_agent if s.text != NO_ANSWER]
    shown = f'"{_unmention(_clip(question, 25))}"' if question else phrases["your_message"]
    opening = phrases["synthesis"].format(persona=persona, count=len(answers), shown=shown)
    lines = [opening]
    for source in by_agent:
        if source.text == NO_ANSWER:
            lines.append(phrases["missing"].format(name=source.label))
        else:
            lines.append(f'- **{source.label}**: "{_unmention(_own_point(source.text))}"')
    return lines


def _markers(text: str) -> dict[str, str]:
    return {m.group(1).lower(): m.group(2) or "" for m in _MARKER.finditer(text)}


def _float(value: str | None, default: float) -> float:
    try:
        return float(value) if value else default
    except ValueError:
        return default


# A message may slow the model down (tests, demos), but not below this: anyone can write the
# marker, and a reply at 0.001 tokens/s would hold a worker slot for hours.
MIN_MARKED_RATE = 2.0


def _rate(marked: str | None, default: float) -> float:
    if marked is None:
        return max(default, 0.0)
    return max(_float(marked, default), MIN_MARKED_RATE)


def plan_reply(messages: Sequence[Any], tokens_per_second: float, model: str) -> Plan:
    """Decide the reply, its rate and any injected failure; raises for immediate failures."""
    user_messages = [m for m in messages if _role(m) == "user"]
    markers = _markers(message_text(user_messages[-1])) if user_messages else {}
    if "fail" in markers:
        raise OfflineFailure("failure requested by marker", model)
    failing = markers.get("fail-for")
    if failing is not None and failing.lower() == _self_id(messages):
        raise OfflineFailure("failure requested by marker for this agent", model)
    key = markers.get("fail-once")
    if key is not None:
        with _failed_lock:
            first_time = key not in _failed_keys
            _failed_keys.add(key)
        if first_time:
            raise OfflineFailure(f"first attempt for {key!r} fails by request", model)
    fail_after = markers.get("fail-after")
    return Plan(
        text=compose_answer(messages),
        prompt_tokens=sum(len(message_text(m).split()) for m in messages),
        tokens_per_second=_rate(markers.get("slow"), tokens_per_second),
        fail_after=int(_float(fail_after, 0)) if fail_after is not None else None,
    )


def _self_id(messages: Sequence[Any]) -> str | None:
    system = "\n".join(message_text(m) for m in messages if _role(m) == "system")
    return _persona(extract_sources(system)[1])[1]


def split_tokens(text: str) -> list[str]:
    """Words with their trailing whitespace; joining them gives back `text`."""
    return re.findall(r"\s*\S+\s*", text) if text.strip() else []


def _limit(tokens: list[str], optional_params: Mapping[str, Any]) -> tuple[list[str], Finish]:
    limit = optional_params.get("max_tokens") or optional_params.get("max_completion_tokens")
    if isinstance(limit, int) and 0 < limit < len(tokens):
        return tokens[:limit], "length"
    return tokens, "stop"


def _usage(plan: Plan, completion_tokens: int) -> Usage:
    return Usage(
        prompt_tokens=plan.prompt_tokens,
        completion_tokens=completion_tokens,
        total_tokens=plan.prompt_tokens + completion_tokens,
    )


def _chunk(text: str, finish_reason: str = "", usage: Usage | None = None) -> GenericStreamingChunk:
    block: ChatCompletionUsageBlock | None = None
    if usage is not None:
        block = {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
        }
    return GenericStreamingChunk(
        text=text,
        tool_use=None,
        is_finished=bool(finish_reason),
        finish_reason=finish_reason,
        usage=block,
        index=0,
    )


EMBEDDING_DIMENSIONS = 256
_WORD = re.compile(r"\w+")


def hashed_embedding(text: str) -> list[float]:
    """Each word adds ±1 at a position its hash picks; texts sharing words point alike."""
    vector = [0.0] * EMBEDDING_DIMENSIONS
    for word in _WORD.findall(text.lower()):
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        index = int.from_bytes(digest[:4], "big") % EMBEDDING_DIMENSIONS
        vector[index] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


class OfflineLLM(CustomLLM):
    """litellm handler; litellm passes every argument by keyword."""

    def __init__(self, tokens_per_second: float = 0.0) -> None:
        super().__init__()
        self.tokens_per_second = tokens_per_second

    def _prepare(self, kwargs: Mapping[str, Any]) -> tuple[Plan, list[str], Finish]:
        model = str(kwargs.get("model") or DEFAULT_MODEL)
        plan = plan_reply(kwargs.get("messages") or [], self.tokens_per_second, model)
        tokens, finish = _limit(split_tokens(plan.text), kwargs.get("optional_params") or {})
        return plan, tokens, finish

    def _response(
        self, kwargs: Mapping[str, Any], plan: Plan, tokens: list[str], finish: Finish
    ) -> ModelResponse:
        if plan.fail_after is not None:
            raise OfflineFailure("failure requested by marker", str(kwargs.get("model")))
        response = kwargs.get("model_response")
        response = response if isinstance(response, ModelResponse) else ModelResponse()
        choice = response.choices[0]
        if isinstance(choice, Choices):
            choice.message.content = "".join(tokens)
            choice.finish_reason = finish
        response.model = str(kwargs.get("model") or DEFAULT_MODEL)
        response.created = int(time.time())
        setattr(response, "usage", _usage(plan, len(tokens)))  # noqa: B010
        return response

    def completion(self, *args: Any, **kwargs: Any) -> ModelResponse:
        plan, tokens, finish = self._prepare(kwargs)
        if plan.tokens_per_second > 0 and len(tokens) > 1:
            time.sleep((len(tokens) - 1) / plan.tokens_per_second)
        return self._response(kwargs, plan, tokens, finish)

    async def acompletion(self, *args: Any, **kwargs: Any) -> ModelResponse:
        plan, tokens, finish = self._prepare(kwargs)
        if plan.tokens_per_second > 0 and len(tokens) > 1:
            await asyncio.sleep((len(tokens) - 1) / plan.tokens_per_second)
        return self._response(kwargs, plan, tokens, finish)

    def streaming(self, *args: Any, **kwargs: Any) -> Iterator[GenericStreamingChunk]:
        plan, tokens, finish = self._prepare(kwargs)
        for i, token in enumerate(tokens):
            if i == plan.fail_after:
                raise OfflineFailure(
                    f"failed after {i} tokens by request", str(kwargs.get("model"))
                )
            if i and plan.tokens_per_second > 0:
                time.sleep(1 / plan.tokens_per_second)
            yield _chunk(token)
        yield _chunk("", finish, _usage(plan, len(tokens)))

    # litellm wraps the returned async generator itself, so this is an async generator
    # function rather than the coroutine the base class annotation describes.
    async def astreaming(  # type: ignore[override]
        self, *args: Any, **kwargs: Any
    ) -> AsyncIterator[GenericStreamingChunk]:
        plan, tokens, finish = self._prepare(kwargs)
        for i, token in enumerate(tokens):
            if i == plan.fail_after:
                raise OfflineFailure(
                    f"failed after {i} tokens by request", str(kwargs.get("model"))
                )
            if i and plan.tokens_per_second > 0:
                await asyncio.sleep(1 / plan.tokens_per_second)
            yield _chunk(token)
        yield _chunk("", finish, _usage(plan, len(tokens)))

    def embedding(self, *args: Any, **kwargs: Any) -> EmbeddingResponse:
        return _embedding_response(kwargs)

    async def aembedding(self, *args: Any, **kwargs: Any) -> EmbeddingResponse:
        return _embedding_response(kwargs)


def _embedding_response(kwargs: Mapping[str, Any]) -> EmbeddingResponse:
    texts = [str(t) for t in kwargs.get("input") or []]
    response: EmbeddingResponse = kwargs.get("model_response") or EmbeddingResponse()
    response.model = str(kwargs.get("model") or DEFAULT_MODEL)
    response.data = [
        {"object": "embedding", "index": i, "embedding": hashed_embedding(text)}
        for i, text in enumerate(texts)
    ]
    words = sum(len(_WORD.findall(t)) for t in texts)
    response.usage = Usage(prompt_tokens=words, completion_tokens=0, total_tokens=words)
    return response


def register_offline_provider(tokens_per_second: float = 0.0) -> OfflineLLM:
    """Make `offline/<anything>` callable through litellm; safe to call repeatedly."""
    with _register_lock:
        for item in litellm.custom_provider_map:
            handler = item["custom_handler"]
            if item["provider"] == PROVIDER and isinstance(handler, OfflineLLM):
                handler.tokens_per_second = tokens_per_second
                return handler
        handler = OfflineLLM(tokens_per_second)
        others = [i for i in litellm.custom_provider_map if i["provider"] != PROVIDER]
        litellm.custom_provider_map = [*others, {"provider": PROVIDER, "custom_handler": handler}]
        litellm.utils.custom_llm_setup()  # type: ignore[no-untyped-call]
        return handler
