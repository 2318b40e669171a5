"""Copies of a person's words: word runs that find a quoted message inside other text.

Texts are compared as words (case, accents, punctuation, `@` and spacing ignored), so a
quote an agent clipped, re-spaced or stripped of its mentions is still found. A message is
remembered as the hashes of its runs of SHINGLE_WORDS consecutive words (a shorter message,
from MIN_WORDS words, as one run): the erasure keeps hashes, never the text, and a hash
found in another text marks the words it covers.

Shorter messages ("ok", "see you then") are not remembered: words that common are no one's.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Collection, Iterable
from dataclasses import dataclass

SHINGLE_WORDS = 5
MIN_WORDS = 4
# A copy inside a person's own message is redacted only from this length on: shorter
# overlaps may be the same everyday phrase, and that person's words are not the subject's.
LONG_QUOTE_WORDS = 10

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Word:
    folded: str
    start: int
    end: int


@dataclass(frozen=True)
class Span:
    """Characters [start, end) of a text, covering `words` words found in a fingerprint."""

    start: int
    end: int
    words: int


def _fold(word: str) -> str:
    decomposed = unicodedata.normalize("NFKD", word.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words(text: str) -> list[Word]:
    return [Word(_fold(m.group()), m.start(), m.end()) for m in _WORD.finditer(text)]


def _digest(run: Iterable[str]) -> str:
    return hashlib.blake2b(" ".join(run).encode(), digest_size=8).hexdigest()


_SENTENCE_END = re.compile(r"[.!?]+\s+|\n+")


def fingerprint(text: str) -> set[str]:
    """The hashes that stand for `text`: its 5-word runs, and each sentence of exactly
    MIN_WORDS words as one run (a quote may be that sentence alone). Empty for texts under
    MIN_WORDS words."""
    folded = [w.folded for w in words(text)]
    if len(folded) < MIN_WORDS:
        return set()
    if len(folded) < SHINGLE_WORDS:
        return {_digest(folded)}
    prints = {
        _digest(folded[i : i + SHINGLE_WORDS]) for i in range(len(folded) - SHINGLE_WORDS + 1)
    }
    for sentence in _SENTENCE_END.split(text):
        short = [w.folded for w in words(sentence)]
        if len(short) == MIN_WORDS:
            prints.add(_digest(short))
    return prints


def copied_spans(text: str, prints: Collection[str]) -> list[Span]:
    """The parts of `text` made of runs found in `prints`, merged where they touch."""
    if not prints or not text:
        return []
    found = words(text)
    folded = [w.folded for w in found]
    covered = [False] * len(found)
    for size in range(MIN_WORDS, SHINGLE_WORDS + 1):
        for i in range(len(folded) - size + 1):
            if _digest(folded[i : i + size]) in prints:
                covered[i : i + size] = [True] * size
    spans: list[Span] = []
    i = 0
    while i < len(found):
        if not covered[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(found) and covered[j + 1]:
            j += 1
        spans.append(Span(found[i].start, found[j].end, j - i + 1))
        i = j + 1
    return spans


def redact(text: str, prints: Collection[str], replacement: str, min_words: int = 1) -> str:
    """`text` with every copied span of at least `min_words` words replaced."""
    out: list[str] = []
    cursor = 0
    for span in copied_spans(text, prints):
        if span.words < min_words:
            continue
        out += [text[cursor : span.start], replacement]
        cursor = span.end
    return "".join(out) + text[cursor:] if out else text


def longest_copy(text: str, prints: Collection[str]) -> int:
    """Words in the longest copied span (0: none)."""
    return max((s.words for s in copied_spans(text, prints)), default=0)
