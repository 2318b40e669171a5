"""Message search: what a person typed (and the filters the client set) becomes ids, the
repository finds the messages they can read, and each hit gets its highlighted fragments.

Unknown filter values are a 422 that says which: a room of yours called so, a person you
can know of (your organisation or a shared room), an agent. A room id that is not one of
yours is the 404 of a room that does not exist, as everywhere else.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from iaf.agents.registry import get_registry
from iaf.db.models import User
from iaf.db.repositories.message_search import (
    MessageSearchRepository,
    SearchCriteria,
    SearchHit,
    SortOrder,
)
from iaf.errors import ApiError
from iaf.rooms.service import room_for_member
from iaf.search.highlight import as_html, split_marked
from iaf.search.query import ParsedQuery, parse_query
from schemas.chat import MessageOut
from schemas.search import SearchHitOut, SearchQueryOut, SearchResults


@dataclass
class SearchFilters:
    """Filters the client set as query parameters; they add to those typed in `q`."""

    room_id: uuid.UUID | None = None
    author_ids: list[uuid.UUID] = field(default_factory=list)
    agent_ids: list[str] = field(default_factory=list)
    after: datetime | None = None
    before: datetime | None = None
    mentions_me: bool = False
    sort: SortOrder = "recent"


async def _room_ids(
    search: MessageSearchRepository,
    session: AsyncSession,
    user: User,
    parsed: ParsedQuery,
    filters: SearchFilters,
) -> list[uuid.UUID]:
    rooms: list[uuid.UUID] = []
    if filters.room_id is not None:
        await room_for_member(session, filters.room_id, user)
        rooms.append(filters.room_id)
    for value, found in (await search.rooms_of_member(user.id, parsed.rooms)).items():
        if not found:
            raise ApiError(422, "unknown_room", f"in: none of your rooms is called {value[:80]!r}")
        rooms += found
    return list(dict.fromkeys(rooms))


async def _authors(
    search: MessageSearchRepository, user: User, parsed: ParsedQuery, filters: SearchFilters
) -> tuple[list[uuid.UUID], list[str]]:
    """`from:` names a person by handle or an agent by id; `agent:` an agent only."""
    registry = get_registry()
    people = await search.people_in_reach(user.id, user.org_id, parsed.authors)
    author_ids = list(filters.author_ids)
    agent_ids = list(filters.agent_ids)
    for name in parsed.authors:
        if name.lower() in people:
            author_ids.append(people[name.lower()])
        elif name.lower() in registry:
            agent_ids.append(name.lower())
        else:
            raise ApiError(
                422, "unknown_author", f"from: nobody you share a room with is @{name[:64]}"
            )
    for name in parsed.agents:
        if name.lower() not in registry:
            raise ApiError(422, "unknown_agent", f"agent: there is no agent @{name[:64]}")
        agent_ids.append(name.lower())
    for agent_id in filters.agent_ids:
        if agent_id not in registry:
            raise ApiError(422, "unknown_agent", f"agent: there is no agent @{agent_id[:64]}")
    return list(dict.fromkeys(author_ids)), list(dict.fromkeys(agent_ids))


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return max(a, b) if a and b else a or b


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return min(a, b) if a and b else a or b


async def criteria_for(
    session: AsyncSession, user: User, q: str, filters: SearchFilters
) -> SearchCriteria:
    parsed = parse_query(q)
    if not parsed.terms and not parsed.has_filter and filters == SearchFilters(sort=filters.sort):
        raise ApiError(422, "empty_query", "type words to look for, or a filter such as from:@ann")
    search = MessageSearchRepository(session)
    author_ids, agent_ids = await _authors(search, user, parsed, filters)
    return SearchCriteria(
        user_id=user.id,
        org_id=user.org_id,
        terms=parsed.terms,
        room_ids=await _room_ids(search, session, user, parsed, filters),
        author_ids=author_ids,
        agent_ids=agent_ids,
        after=_latest(parsed.after, filters.after),
        before=_earliest(parsed.before, filters.before),
        mentions_me=parsed.mentions_me or filters.mentions_me,
        sort=filters.sort,
    )


def _hit_out(hit: SearchHit) -> SearchHitOut:
    snippet, ranges = split_marked(hit.headline or "", hit.marker)
    return SearchHitOut(
        message=MessageOut.of(hit.message, hit.sender_name),
        room_name=hit.room_name,
        snippet=snippet,
        highlights=ranges,
        snippet_html=as_html(snippet, ranges),
    )


async def search_messages(
    session: AsyncSession, user: User, q: str, filters: SearchFilters, limit: int, offset: int
) -> SearchResults:
    criteria = await criteria_for(session, user, q, filters)
    hits = await MessageSearchRepository(session).search(criteria, limit, offset)
    return SearchResults(
        items=[_hit_out(hit) for hit in hits],
        next_offset=offset + limit if len(hits) == limit else None,
        query=SearchQueryOut.model_validate(criteria, from_attributes=True),
    )
