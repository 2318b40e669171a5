"""The search box's language: free words (PostgreSQL web-search syntax: "a phrase", -word,
or) plus Slack-style filters.

    in:<room name or id>   from:@handle | from:agent-id   agent:<agent id>
    after:YYYY-MM-DD       before:YYYY-MM-DD              has:mention (mentions you or @all)

A word that looks like a filter but names none (`http://x`, `ratio:2`) stays a word. Values
are checked here (dates) or by the service (rooms, people, agents); nothing is guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from iaf.errors import ApiError

MAX_QUERY_CHARS = 500
_FILTER = re.compile(r'(?<!\S)(in|from|agent|after|before|has):("[^"]*"|\S+)', re.IGNORECASE)


@dataclass
class ParsedQuery:
    """What the person typed, split into words and filter values (not yet resolved to ids)."""

    terms: str = ""
    rooms: list[str] = field(default_factory=list)
    authors: list[str] = field(default_factory=list)
    agents: list[str] = field(default_factory=list)
    after: datetime | None = None
    before: datetime | None = None
    mentions_me: bool = False

    @property
    def has_filter(self) -> bool:
        return (
            bool(self.rooms or self.authors or self.agents or self.after or self.before)
            or self.mentions_me
        )


def _day(value: str, key: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ApiError(
            422, "invalid_query", f"{key}: wants a date as YYYY-MM-DD, not {value[:40]!r}"
        ) from None


def _apply(parsed: ParsedQuery, key: str, value: str) -> None:
    if key == "in":
        parsed.rooms.append(value)
    elif key == "from":
        parsed.authors.append(value.removeprefix("@"))
    elif key == "agent":
        parsed.agents.append(value.removeprefix("@"))
    elif key == "after":  # after a day: from the next day's start
        start = datetime.combine(_day(value, key), time(), UTC) + timedelta(days=1)
        parsed.after = max(parsed.after, start) if parsed.after else start
    elif key == "before":  # before a day: until that day's start
        end = datetime.combine(_day(value, key), time(), UTC)
        parsed.before = min(parsed.before, end) if parsed.before else end
    elif value.lower() in ("mention", "mentions"):
        parsed.mentions_me = True
    else:
        raise ApiError(422, "invalid_query", "has: knows only has:mention")


def parse_query(text: str) -> ParsedQuery:
    """Split the box's text; a 422 names the filter that cannot be read."""
    if len(text) > MAX_QUERY_CHARS:
        raise ApiError(422, "query_too_long", f"a search is at most {MAX_QUERY_CHARS} characters")
    parsed = ParsedQuery()
    for match in _FILTER.finditer(text):
        value = match.group(2)
        if value.startswith('"'):
            value = value.strip('"')
        if not value.strip():
            raise ApiError(422, "invalid_query", f"{match.group(1)}: needs a value")
        _apply(parsed, match.group(1).lower(), value.strip())
    parsed.terms = " ".join(_FILTER.sub(" ", text).split())
    return parsed
