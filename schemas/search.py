"""Message search over HTTP: the hits, their highlighted fragments, the filters understood."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from schemas.chat import MessageOut


class SearchHitOut(BaseModel):
    message: MessageOut
    room_name: str
    # The matching fragments as plain text, and where the matched words are in it
    # ([start, end) character offsets); `snippet_html` is the same, escaped, words in <mark>.
    snippet: str
    highlights: list[tuple[int, int]]
    snippet_html: str


class SearchQueryOut(BaseModel):
    """The search as the server understood it (filters resolved to ids), to show as chips."""

    terms: str
    room_ids: list[uuid.UUID]
    author_ids: list[uuid.UUID]
    agent_ids: list[str]
    after: datetime | None
    before: datetime | None
    mentions_me: bool
    sort: Literal["recent", "relevance"]


class SearchResults(BaseModel):
    items: list[SearchHitOut]
    next_offset: int | None
    query: SearchQueryOut
