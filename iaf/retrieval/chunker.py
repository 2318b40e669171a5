"""Split a document into overlapping chunks that keep paragraphs and sentences whole.

Chunks are what retrieval returns and what an agent quotes, so a chunk should read as a
passage: paragraphs are kept together when they fit, long ones are split between sentences,
and only a sentence longer than a whole chunk is cut (between words). Each chunk starts with
the last sentences of the previous one (up to `overlap` characters) so an idea that straddles
a boundary is found from either side.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PARAGRAPHS = re.compile(r"\n[ \t]*\n+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class _Piece:
    text: str
    starts_paragraph: bool


def chunk_text(text: str, max_chars: int = 800, overlap: int = 120) -> list[str]:
    """Chunks of at most `max_chars` characters (whitespace normalised inside paragraphs)."""
    if max_chars < 20:
        raise ValueError("max_chars must be at least 20")
    overlap = max(0, min(overlap, max_chars // 2))
    chunks: list[list[_Piece]] = []
    current: list[_Piece] = []
    for piece in _pieces(text, max_chars):
        if current and _length([*current, piece]) > max_chars:
            chunks.append(current)
            current = _tail(current, overlap)
            if _length([*current, piece]) > max_chars:
                current = []
        current.append(piece)
    if current and (not chunks or current != _tail(chunks[-1], overlap)):
        chunks.append(current)
    return [_join(chunk) for chunk in chunks]


def _pieces(text: str, max_chars: int) -> list[_Piece]:
    pieces: list[_Piece] = []
    for paragraph in _PARAGRAPHS.split(text):
        flat = " ".join(paragraph.split())
        if not flat:
            continue
        units = [flat] if len(flat) <= max_chars else _sentences(flat, max_chars)
        pieces += [_Piece(unit, i == 0) for i, unit in enumerate(units)]
    return pieces


def _sentences(paragraph: str, max_chars: int) -> list[str]:
    units: list[str] = []
    for sentence in _SENTENCE_END.split(paragraph):
        while len(sentence) > max_chars:
            cut = sentence.rfind(" ", 0, max_chars + 1)
            cut = cut if cut > 0 else max_chars
            units.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if sentence:
            units.append(sentence)
    return units


def _tail(pieces: list[_Piece], overlap: int) -> list[_Piece]:
    """The last pieces of a chunk that together fit in `overlap` characters."""
    kept: list[_Piece] = []
    for piece in reversed(pieces):
        if _length([piece, *kept]) > overlap:
            break
        kept.insert(0, piece)
    return kept


def _join(pieces: list[_Piece]) -> str:
    parts: list[str] = []
    for i, piece in enumerate(pieces):
        if i:
            parts.append("\n\n" if piece.starts_paragraph else " ")
        parts.append(piece.text)
    return "".join(parts)


def _length(pieces: list[_Piece]) -> int:
    return len(_join(pieces))
