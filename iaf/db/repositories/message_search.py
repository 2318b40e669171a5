"""Full-text search over the messages a person can read, in one statement.

Membership is part of the query (no list of room ids travels from Python), so a room the
person left is out of their results at once. Words match French or English stems, accents
ignored (messages.search_vector, generated from the text). Deleted messages have no text,
hence no words; the `deleted_at` condition is a second guard.

The shape is chosen for 1,000,000 messages (bench/search.py). Each vector also holds its
room as a lexeme, so one GIN scan answers "(the words) & (one of the person's rooms)"; the
`room_id = ANY(their rooms)` condition then keeps exactly their rooms. Joining messages to
the rooms instead let the planner read every match of a common word in the whole table, or
walk the primary key backwards (400-900 ms for "projet"), or repeat the GIN scan once per
room (up to 190 ms). This one: 7-36 ms for the benchmark's word queries on a busy machine.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.models import Message

SortOrder = Literal["recent", "relevance"]

# Stems with their accents dropped (migration 0011_message_search), as in search_vector.
_QUERY = "public.iaf_search_query(:terms)"
# Highlighting parses the text again (ts_headline): first as it was written, in French then
# English; then without accents, for words typed without theirs ("reunion" for "réunions").
_HEADLINE_CONFIGS = ("french", "english", "iaf_french")
_COLUMNS = (
    "m.id, m.room_id, m.sender_user_id, m.sender_agent_id, m.content, m.type, m.reply_to_id,"
    " m.metadata, m.client_msg_id, m.created_at, m.edited_at, m.deleted_at"
)


@dataclass(frozen=True)
class SearchCriteria:
    """Resolved filters: ids and times, never names. Empty lists mean "any"."""

    user_id: uuid.UUID
    org_id: uuid.UUID
    terms: str = ""
    room_ids: list[uuid.UUID] = field(default_factory=list)
    author_ids: list[uuid.UUID] = field(default_factory=list)
    agent_ids: list[str] = field(default_factory=list)
    after: datetime | None = None
    before: datetime | None = None
    mentions_me: bool = False
    sort: SortOrder = "recent"


@dataclass(frozen=True)
class SearchHit:
    message: Message
    sender_name: str | None
    room_name: str
    # The matching fragments, the matched words between `marker` pairs.
    headline: str
    marker: tuple[str, str]


def _conditions(criteria: SearchCriteria) -> tuple[list[str], dict[str, Any]]:
    """The conditions on one message `m` of a room `r` the person is in."""
    where = [
        "m.deleted_at IS NULL",
        "m.content <> ''",
        # The person's rooms, as an array: a join here would make the planner repeat the GIN
        # scan once per room (10 x 14 ms for a common word).
        "m.room_id = ANY(ARRAY(SELECT id FROM readable))",
        # A guest does not read replies drawn from the organisation's documents.
        "(NOT coalesce((m.metadata ->> 'org_knowledge') = 'true', false)"
        " OR m.room_id = ANY(ARRAY(SELECT id FROM readable WHERE org_id = :org_id)))",
    ]
    params: dict[str, Any] = {"user_id": criteria.user_id, "org_id": criteria.org_id}
    words = f"{_QUERY} && " if criteria.terms else ""
    where.append(
        f"m.search_vector @@ ({words}(SELECT public.iaf_rooms_query(array_agg(id)) FROM readable))"
    )
    params["room_ids"] = criteria.room_ids or None
    authors = []
    if criteria.author_ids:
        authors.append("m.sender_user_id = ANY(:author_ids)")
        params["author_ids"] = criteria.author_ids
    if criteria.agent_ids:
        authors.append("m.sender_agent_id = ANY(:agent_ids)")
        params["agent_ids"] = criteria.agent_ids
    if authors:  # from:@ann from:@architect is either of them
        where.append(f"({' OR '.join(authors)})")
    if criteria.after is not None:
        where.append("m.created_at >= :after")
        params["after"] = criteria.after
    if criteria.before is not None:
        where.append("m.created_at < :before")
        params["before"] = criteria.before
    if criteria.mentions_me:
        params["mentioned_id"] = str(criteria.user_id)
        where.append(
            "(m.metadata -> 'mentions' @> jsonb_build_array(jsonb_build_object("
            "'kind', 'user', 'id', CAST(:mentioned_id AS text)))"
            " OR m.metadata -> 'mentions' @> '[{\"kind\": \"all\"}]'::jsonb)"
        )
    return where, params


def _headlines_sql() -> str:
    """One headline per configuration; the caller keeps the first that marks a word."""
    return (
        "ARRAY["
        + ", ".join(
            f"ts_headline('{c}', hits.content, websearch_to_tsquery('{c}', :terms), :options)"
            for c in _HEADLINE_CONFIGS
        )
        + "]"
    )


class MessageSearchRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def search(self, criteria: SearchCriteria, limit: int, offset: int) -> list[SearchHit]:
        """A page of hits, newest first or best first, each with its highlighted fragments."""
        where, params = _conditions(criteria)
        relevance = criteria.sort == "relevance" and bool(criteria.terms)
        rank = f"ts_rank_cd(m.search_vector, {_QUERY})" if relevance else "0"
        order = "rank DESC, id DESC" if relevance else "id DESC"
        # A marker nobody typed: a random token per query (message text may hold anything).
        nonce = secrets.token_hex(8)
        marker = (f"[[{nonce}:", f":{nonce}]]")
        params.update(
            terms=criteria.terms,
            limit=limit,
            offset=offset,
            options=(
                f'StartSel="{marker[0]}", StopSel="{marker[1]}", MaxWords=30, MinWords=12,'
                ' ShortWord=2, MaxFragments=2, FragmentDelimiter=" … "'
            ),
        )
        headlines = _headlines_sql() if criteria.terms else "ARRAY[left(hits.content, 300)]"
        sql = f"""
            WITH readable AS MATERIALIZED (
                SELECT r.id, r.name, r.org_id FROM room_members rm
                JOIN rooms r ON r.id = rm.room_id AND r.kind <> 'api'
                WHERE rm.user_id = :user_id
                  AND (CAST(:room_ids AS uuid[]) IS NULL OR r.id = ANY(:room_ids))
            ), hits AS (
                SELECT {_COLUMNS}, {rank} AS rank
                FROM messages m
                WHERE {" AND ".join(where)}
                ORDER BY {order}
                LIMIT :limit OFFSET :offset
            )
            SELECT hits.*, r.name AS room_name, u.name AS sender_name, {headlines} AS headlines
            FROM hits JOIN readable r ON r.id = hits.room_id
            LEFT JOIN users u ON u.id = hits.sender_user_id
            ORDER BY {order}
        """
        rows = (await self.session.execute(text(sql), params)).mappings().all()
        return [self._hit(row, marker) for row in rows]

    @staticmethod
    def _hit(row: Any, marker: tuple[str, str]) -> SearchHit:
        message = Message(
            id=row["id"],
            room_id=row["room_id"],
            sender_user_id=row["sender_user_id"],
            sender_agent_id=row["sender_agent_id"],
            content=row["content"],
            type=row["type"],
            reply_to_id=row["reply_to_id"],
            meta=row["metadata"],
            client_msg_id=row["client_msg_id"],
            created_at=row["created_at"],
            edited_at=row["edited_at"],
            deleted_at=row["deleted_at"],
        )
        headlines = [h for h in row["headlines"] if h is not None]
        marked = [h for h in headlines if marker[0] in h]
        headline = (marked or headlines or [""])[0]
        return SearchHit(message, row["sender_name"], row["room_name"], headline, marker)

    async def rooms_of_member(
        self, user_id: uuid.UUID, names_or_ids: list[str]
    ) -> dict[str, list[uuid.UUID]]:
        """For each `in:` value, the caller's rooms with that id or (case-insensitive) name."""
        found: dict[str, list[uuid.UUID]] = {}
        for value in names_or_ids:
            rows = await self.session.execute(
                text(
                    "SELECT r.id FROM rooms r JOIN room_members rm ON rm.room_id = r.id"
                    " AND rm.user_id = :user_id WHERE r.kind <> 'api'"
                    " AND (CAST(r.id AS text) = lower(:value) OR lower(r.name) = lower(:value))"
                ),
                {"user_id": user_id, "value": value},
            )
            found[value] = [row[0] for row in rows]
        return found

    async def people_in_reach(
        self, user_id: uuid.UUID, org_id: uuid.UUID, handles: list[str]
    ) -> dict[str, uuid.UUID]:
        """Handles of people the caller can know of (their organisation or a shared room),
        lower-cased; anyone else is as unknown as a handle nobody has."""
        if not handles:
            return {}
        rows = await self.session.execute(
            text(
                "SELECT lower(u.handle), u.id FROM users u WHERE lower(u.handle) = ANY(:handles)"
                " AND (u.org_id = :org_id OR EXISTS (SELECT 1 FROM room_members theirs"
                " JOIN room_members mine ON mine.room_id = theirs.room_id"
                " AND mine.user_id = :user_id WHERE theirs.user_id = u.id))"
            ),
            {"user_id": user_id, "org_id": org_id, "handles": [h.lower() for h in handles]},
        )
        return {str(row[0]): row[1] for row in rows}
