"""A person's words copied into other rows: found by fingerprint, redacted or counted.

Read in pages and compared in Python (iaf.privacy.fingerprints), because a copy is a run of
words however it was re-spaced, clipped or stripped of mentions, which no SQL pattern says.
What agents wrote (replies, system notices, their contexts and drafts) loses every copy;
what a person wrote loses a long verbatim quote only, and a shorter overlap is for review.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.erasure_patterns import ERASED
from iaf.db.repositories.gdpr_export import table_exists
from iaf.privacy.fingerprints import LONG_QUOTE_WORDS, longest_copy, redact

_PAGE = 500
AGENT_TYPES = ("agent", "system")


@dataclass(frozen=True)
class CopyCount:
    location: str
    trace: bool  # a copy the erasure should have removed (else: for review)
    rows: int


def _min_words(by_agent: bool) -> int:
    return 1 if by_agent else LONG_QUOTE_WORDS


def redact_json(value: Any, prints: Collection[str]) -> Any:
    """Every string inside a JSON value, redacted as agent-written text."""
    if isinstance(value, str):
        return redact(value, prints, ERASED)
    if isinstance(value, list):
        return [redact_json(v, prints) for v in value]
    if isinstance(value, dict):
        return {k: redact_json(v, prints) for k, v in value.items()}
    return value


# Where else a copy may sit: agents' runs in the rooms, and the organisation's documents
# (whole, and the chunk texts retrieval reads) and memories.
_TEXTS_OUTSIDE_ROOMS = (
    (
        "agent_runs",
        "SELECT coalesce(context::text, '') || ' ' || coalesce(answer, '') FROM agent_runs"
        " WHERE room_id = ANY(:rooms)",
    ),
    (
        "knowledge_documents",
        "SELECT title || ' ' || content FROM knowledge_documents WHERE org_id = :org",
    ),
    (
        "knowledge_chunks",
        "SELECT c.content FROM knowledge_chunks c JOIN knowledge_documents d"
        " ON d.id = c.document_id WHERE d.org_id = :org",
    ),
    ("memories", "SELECT content FROM memories WHERE org_id = :org"),
)


class CopyRedactor:
    def __init__(self, session: AsyncSession, prints: Collection[str]) -> None:
        self.session = session
        self.prints = prints

    async def _pages(self, sql: str, params: dict[str, Any]) -> AsyncIterator[Any]:
        """Rows of `sql` (which selects `id` first and orders by it) in pages."""
        after = 0
        while True:
            rows = (
                await self.session.execute(text(sql), {**params, "after": after, "limit": _PAGE})
            ).all()
            for row in rows:
                yield row
            if len(rows) < _PAGE:
                return
            after = rows[-1][0]

    async def in_rooms(self, rooms: list[uuid.UUID]) -> int:
        changed = await self._messages(rooms) + await self._events(rooms)
        if await table_exists(self.session, "agent_runs"):
            changed += await self._runs(rooms)
        return changed

    async def _messages(self, rooms: list[uuid.UUID]) -> int:
        changed = 0
        async for id_, content, type_ in self._pages(
            "SELECT id, content, type FROM messages WHERE room_id = ANY(:rooms)"
            " AND deleted_at IS NULL AND content <> '' AND id > :after ORDER BY id LIMIT :limit",
            {"rooms": rooms},
        ):
            new = redact(content, self.prints, ERASED, _min_words(type_ in AGENT_TYPES))
            if new != content:
                await self.session.execute(
                    text("UPDATE messages SET content = :c WHERE id = :id"), {"c": new, "id": id_}
                )
                changed += 1
        return changed

    async def _events(self, rooms: list[uuid.UUID]) -> int:
        changed = 0
        async for id_, content, type_ in self._pages(
            "SELECT id, data ->> 'content', data ->> 'type' FROM room_events"
            " WHERE room_id = ANY(:rooms) AND type IN ('message.new', 'message.edit')"
            " AND coalesce(data ->> 'content', '') <> '' AND id > :after ORDER BY id LIMIT :limit",
            {"rooms": rooms},
        ):
            new = redact(content, self.prints, ERASED, _min_words(type_ in AGENT_TYPES))
            if new != content:
                await self.session.execute(
                    text(
                        "UPDATE room_events SET data = data || jsonb_build_object('content',"
                        " CAST(:c AS text)) WHERE id = :id"
                    ),
                    {"c": new, "id": id_},
                )
                changed += 1
        return changed

    async def _runs(self, rooms: list[uuid.UUID]) -> int:
        """Contexts and drafts of replies still running (finished ones keep no text)."""
        rows = await self.session.execute(
            text(
                "SELECT reply_id, context, answer FROM agent_runs WHERE room_id = ANY(:rooms)"
                " AND (context IS NOT NULL OR answer IS NOT NULL)"
            ),
            {"rooms": rooms},
        )
        changed = 0
        for reply_id, context, answer in rows.all():
            new_context = redact_json(context, self.prints)
            new_answer = redact(answer, self.prints, ERASED) if answer else answer
            if new_context != context or new_answer != answer:
                await self.session.execute(
                    text(
                        "UPDATE agent_runs SET context = CAST(:ctx AS jsonb), answer = :ans"
                        " WHERE reply_id = :id"
                    ),
                    {"ctx": json.dumps(new_context), "ans": new_answer, "id": reply_id},
                )
                changed += 1
        return changed

    # --- verification ------------------------------------------------------------------

    async def count(self, rooms: list[uuid.UUID], org_id: uuid.UUID) -> list[CopyCount]:
        """Copies left: in the rooms (messages, events, runs) and in the organisation's
        documents and memories (other people's own texts: for review)."""
        counts: dict[tuple[str, bool], int] = {}
        if not self.prints:
            return []

        def note(location: str, found: int, by_agent: bool, erasable: bool = True) -> None:
            if found:
                key = (location, erasable and found >= _min_words(by_agent))
                counts[key] = counts.get(key, 0) + 1

        if rooms:
            async for _, content, type_ in self._pages(
                "SELECT id, content, type FROM messages WHERE room_id = ANY(:rooms)"
                " AND id > :after ORDER BY id LIMIT :limit",
                {"rooms": rooms},
            ):
                note("messages.content", longest_copy(content, self.prints), type_ in AGENT_TYPES)
            async for _, content, type_ in self._pages(
                "SELECT id, data ->> 'content', data ->> 'type' FROM room_events"
                " WHERE room_id = ANY(:rooms) AND type IN ('message.new', 'message.edit')"
                " AND id > :after ORDER BY id LIMIT :limit",
                {"rooms": rooms},
            ):
                found = longest_copy(content or "", self.prints)
                note("room_events.data", found, type_ in AGENT_TYPES)
            await self._count_streams(rooms, note)
        for table, select_texts in _TEXTS_OUTSIDE_ROOMS:
            if not await table_exists(self.session, table):
                continue
            rows = await self.session.execute(text(select_texts), {"org": org_id, "rooms": rooms})
            runs = table == "agent_runs"
            for (content,) in rows.all():
                # Runs are agent text; documents, their chunks and memories left are other
                # people's own words, which an erasure never rewrites: any copy is for review.
                note(table, longest_copy(content, self.prints), runs, erasable=runs)
        return [CopyCount(f"postgres:{loc}", trace, n) for (loc, trace), n in counts.items()]

    async def _count_streams(self, rooms: list[uuid.UUID], note: Any) -> None:
        """A reply still streaming, read as one text: a quote may span two deltas."""
        rows = await self.session.execute(
            text(
                "SELECT string_agg(data ->> 'text', '' ORDER BY id) FROM room_events"
                " WHERE room_id = ANY(:rooms) AND type = 'agent.delta'"
                " GROUP BY data ->> 'reply_id', data ->> 'attempt'"
            ),
            {"rooms": rooms},
        )
        for (joined,) in rows.all():
            note("room_events.agent_stream", longest_copy(joined or "", self.prints), True)
