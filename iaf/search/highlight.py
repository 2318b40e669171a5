"""From ts_headline's marked fragments to plain text, match offsets and escaped HTML."""

from __future__ import annotations

import html


def split_marked(marked: str, marker: tuple[str, str]) -> tuple[str, list[tuple[int, int]]]:
    """The text without markers and the [start, end) offsets of what they enclosed."""
    start_mark, stop_mark = marker
    plain: list[str] = []
    ranges: list[tuple[int, int]] = []
    length = 0
    rest = marked
    while True:
        begin = rest.find(start_mark)
        end = rest.find(stop_mark, begin + len(start_mark)) if begin >= 0 else -1
        if begin < 0 or end < 0:
            plain.append(rest)
            break
        before, word = rest[:begin], rest[begin + len(start_mark) : end]
        plain.append(before)
        length += len(before)
        plain.append(word)
        ranges.append((length, length + len(word)))
        length += len(word)
        rest = rest[end + len(stop_mark) :]
    return "".join(plain), ranges


def as_html(text: str, ranges: list[tuple[int, int]]) -> str:
    """Every character escaped; only our <mark> elements are markup."""
    parts: list[str] = []
    position = 0
    for start, end in ranges:
        parts.append(html.escape(text[position:start]))
        parts.append(f"<mark>{html.escape(text[start:end])}</mark>")
        position = end
    parts.append(html.escape(text[position:]))
    return "".join(parts)
