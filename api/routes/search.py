"""GET /api/search: the messages the caller can read that match a query (see iaf/search)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Query, Response

from api.deps import CurrentUser, SessionDep, StateDep
from iaf.search.service import SearchFilters, search_messages
from schemas.common import SafeStr
from schemas.search import SearchResults

router = APIRouter(tags=["search"])


@router.get("/api/search")
async def search(
    user: CurrentUser,
    session: SessionDep,
    state: StateDep,
    response: Response,
    q: SafeStr = Query(default="", max_length=500, description="words and filters"),
    room_id: uuid.UUID | None = Query(default=None),
    author_id: list[uuid.UUID] = Query(default_factory=list, max_length=20),
    agent: list[str] = Query(default_factory=list, max_length=20),
    after: datetime | None = Query(default=None),
    before: datetime | None = Query(default=None),
    mentions_me: bool = Query(default=False),
    sort: Literal["recent", "relevance"] = Query(default="recent"),
    limit: int = Query(default=20, ge=1, le=100),
    offset: int = Query(default=0, ge=0, le=1000),
) -> SearchResults:
    """Words match in French or English, accents ignored ("réunion" finds "reunions"); `q`
    also takes in:, from:, agent:, after:, before: and has:mention (README)."""
    settings = state.settings
    await state.limiter.hit(
        f"search:{user.id}", settings.searches_per_minute, 60, response, session
    )
    filters = SearchFilters(
        room_id=room_id,
        author_ids=author_id,
        agent_ids=[a.removeprefix("@").lower() for a in agent],
        after=after,
        before=before,
        mentions_me=mentions_me,
        sort=sort,
    )
    return await search_messages(session, user, q, filters, limit, offset)
