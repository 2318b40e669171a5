"""Find `@mentions` of agents, users and the whole room in a chat message.

Rules (they decide who gets notified and which agents run, so they are deliberately strict):

- A mention is `@` followed by a name of ASCII letters, digits, `_` and `-`. The name must
  not run on into other word characters (`@pmé` is not `@pm`).
- Names match case-insensitively; the returned id is the canonical spelling (the agent id,
  or the handle as given in `user_handles`).
- If the full name is unknown but ends with `-` or `_`, it is retried without them, so
  `@architect-- thoughts?` still mentions the architect; `end` then excludes the stripped
  characters. A handle that really ends with `_` still matches on the first try.
- `@all` and `@room` mean everyone: kind "all", id "all". `@team` asks several agents to
  answer together: kind "team", id "team". They win over any agent or user of the same
  name; agents (by id or alias, reported as the id) win over users.
- Not mentions: an `@` preceded by a word character or `.` (e-mail addresses such as
  `bob@example.com`), an `@` escaped with a backslash (`\\@pm`; an even number of
  backslashes does not escape), anything in an inline code span or a fenced code block
  (CommonMark rules: backtick runs of equal length, ``` or ~~~ fences, an unclosed fence
  runs to the end), and names that are neither agents, users nor all/room.
- Every occurrence is returned in text order; `unique_targets` collapses repeats.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

MentionKind = Literal["agent", "user", "all", "team"]

ALL_NAMES = frozenset({"all", "room"})
TEAM_NAME = "team"

_MENTION = re.compile(r"@([A-Za-z0-9_-]+)")
_FENCE_OPEN = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_BACKTICKS = re.compile(r"`+")


@dataclass(frozen=True, slots=True)
class Mention:
    """One occurrence; `text[start:end]` is `@` plus the name as written."""

    kind: MentionKind
    id: str
    start: int
    end: int


def parse_mentions(
    text: str, agent_ids: Collection[str] | Mapping[str, str], user_handles: Collection[str] = ()
) -> list[Mention]:
    """All mentions in `text`, in order of appearance. `agent_ids` may map aliases to ids."""
    if isinstance(agent_ids, Mapping):
        agents = {name.lower(): agent_ids[name] for name in sorted(agent_ids)}
    else:
        agents = {a.lower(): a for a in sorted(agent_ids)}
    users = {u.lower(): u for u in sorted(user_handles, reverse=True)}
    code = _code_ranges(text)
    starts = [s for s, _ in code]
    found: list[Mention] = []
    for match in _MENTION.finditer(text):
        at = match.start()
        if not _is_mention_position(text, at, match.end()) or _inside(code, starts, at):
            continue
        name = match.group(1)
        for candidate in dict.fromkeys((name, name.rstrip("-_"))):
            resolved = _resolve(candidate.lower(), agents, users)
            if resolved is not None:
                kind, target = resolved
                found.append(Mention(kind, target, at, at + 1 + len(candidate)))
                break
    return found


def unique_targets(mentions: Iterable[Mention]) -> list[Mention]:
    """The first mention of each (kind, id), in order of first appearance."""
    seen: dict[tuple[str, str], Mention] = {}
    for mention in mentions:
        seen.setdefault((mention.kind, mention.id), mention)
    return list(seen.values())


def mentioned_agents(mentions: Iterable[Mention]) -> list[str]:
    """Distinct agent ids in order of first mention: the replies a message should start."""
    return [m.id for m in unique_targets(mentions) if m.kind == "agent"]


def _resolve(
    name: str, agents: dict[str, str], users: dict[str, str]
) -> tuple[MentionKind, str] | None:
    if not name:
        return None
    if name in ALL_NAMES:
        return "all", "all"
    if name == TEAM_NAME:
        return "team", TEAM_NAME
    if name in agents:
        return "agent", agents[name]
    if name in users:
        return "user", users[name]
    return None


def without_code(text: str) -> str:
    """`text` with its code spans and fenced blocks blanked out (for reading its prose)."""
    kept, cursor = [], 0
    for start, end in _code_ranges(text):
        kept.append(text[cursor:start])
        kept.append(" ")
        cursor = end
    kept.append(text[cursor:])
    return "".join(kept)


def _is_mention_position(text: str, at: int, end: int) -> bool:
    """False for e-mail addresses, escaped `@` and names that run on into other letters."""
    if at > 0 and (text[at - 1].isalnum() or text[at - 1] in "._"):
        return False
    if _escaped(text, at):
        return False
    return not (end < len(text) and (text[end].isalnum() or text[end] == "_"))


def _escaped(text: str, index: int) -> bool:
    """True when `text[index]` follows an odd number of backslashes."""
    count = 0
    while index - count - 1 >= 0 and text[index - count - 1] == "\\":
        count += 1
    return count % 2 == 1


def _inside(ranges: list[tuple[int, int]], starts: list[int], index: int) -> bool:
    pos = bisect.bisect_right(starts, index) - 1
    return pos >= 0 and ranges[pos][0] <= index < ranges[pos][1]


def _code_ranges(text: str) -> list[tuple[int, int]]:
    """Sorted, disjoint [start, end) ranges of fenced code blocks and inline code spans."""
    ranges: list[tuple[int, int]] = []
    cursor = 0
    for start, end in _fenced_blocks(text):
        ranges.extend(_inline_spans(text, cursor, start))
        ranges.append((start, end))
        cursor = end
    ranges.extend(_inline_spans(text, cursor, len(text)))
    return ranges


def _fenced_blocks(text: str) -> list[tuple[int, int]]:
    blocks: list[tuple[int, int]] = []
    fence: str | None = None
    block_start = 0
    offset = 0
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        if fence is None:
            opening = _FENCE_OPEN.match(body)
            if opening and not (opening.group(1)[0] == "`" and "`" in opening.group(2)):
                fence, block_start = opening.group(1), offset
        elif _closes(body, fence):
            blocks.append((block_start, offset + len(line)))
            fence = None
        offset += len(line)
    if fence is not None:
        blocks.append((block_start, len(text)))
    return blocks


def _closes(line: str, fence: str) -> bool:
    stripped = line.lstrip(" ")
    if len(line) - len(stripped) > 3:
        return False
    run = len(stripped) - len(stripped.lstrip(fence[0]))
    return run >= len(fence) and not stripped[run:].strip()


def _inline_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Code spans: a backtick run closed by the next run of the same length."""
    runs: list[tuple[int, int]] = []
    for m in _BACKTICKS.finditer(text, start, end):
        # an escaped first backtick is literal; the rest of the run may still open a span
        runs.append((m.start() + 1 if _escaped(text, m.start()) else m.start(), m.end()))
    by_length: dict[int, list[int]] = {}
    for index, (run_start, run_end) in enumerate(runs):
        by_length.setdefault(run_end - run_start, []).append(index)
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(runs):
        same = by_length.get(runs[i][1] - runs[i][0], [])
        after = bisect.bisect_right(same, i)
        if runs[i][1] == runs[i][0] or after == len(same):
            i += 1
            continue
        closer = same[after]
        spans.append((runs[i][0], runs[closer][1]))
        i = closer + 1
    return spans
