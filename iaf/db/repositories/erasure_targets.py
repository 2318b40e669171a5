"""What an erasure searches for, captured before the account and its memberships go.

The e-mail and name kept here never outlive the request (complete or cancelled) nor
TARGETS_MAX_AGE, whatever the request's state. The subject's messages are kept as
fingerprints (hashes of word runs), never as text.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.models import ErasureTarget, User
from iaf.privacy.fingerprints import fingerprint
from iaf.privacy.names import is_distinctive

TARGETS_MAX_AGE = timedelta(days=31)


@dataclass(frozen=True)
class Targets:
    user_id: uuid.UUID
    org_id: uuid.UUID
    email: str
    name: str
    handle: str
    account_created_at: datetime
    room_ids: list[uuid.UUID]
    # Hashes of the subject's messages (iaf.privacy.fingerprints).
    fingerprints: frozenset[str] = frozenset()
    # The rooms where their name alone is replaced (iaf.privacy.names); elsewhere: review.
    name_room_ids: list[uuid.UUID] = field(default_factory=list)


class ErasureTargetRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _exec(self, sql: str, params: dict[str, Any]) -> int:
        result = await self.session.execute(text(sql), params)
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def capture(self, request_id: uuid.UUID, user: User, *, with_texts: bool = True) -> None:
        """Remember what to search for before the account and its memberships disappear;
        `with_texts`: the messages too (not when the policy keeps them, unsigned)."""
        rows = await self.session.execute(
            text(
                "SELECT room_id FROM room_members WHERE user_id = :uid"
                " UNION SELECT DISTINCT room_id FROM messages WHERE sender_user_id = :uid"
            ),
            {"uid": user.id},
        )
        rooms = [str(r[0]) for r in rows.all()]
        await self.session.execute(
            pg_insert(ErasureTarget)
            .values(
                request_id=request_id,
                user_id=user.id,
                org_id=user.org_id,
                email=user.email,
                name=user.name,
                handle=user.handle,
                account_created_at=user.created_at,
                room_ids=rooms,
                text_fingerprints=sorted(await self._fingerprints(user.id)) if with_texts else [],
                name_room_ids=await self._name_rooms(user, rooms),
            )
            .on_conflict_do_nothing(index_elements=["request_id"])
        )

    async def _fingerprints(self, user_id: uuid.UUID) -> set[str]:
        """Every text the subject wrote that others or agents may have quoted: their
        messages (and any earlier version still in an event), documents and memories."""
        rows = await self.session.execute(
            text(
                "SELECT content FROM messages WHERE sender_user_id = :uid AND content <> ''"
                " UNION SELECT data ->> 'content' FROM room_events WHERE type IN ('message.new',"
                " 'message.edit') AND data ->> 'sender_user_id' = :uid_text"
                " AND room_id IN (SELECT room_id FROM room_members WHERE user_id = :uid"
                "  UNION SELECT room_id FROM messages WHERE sender_user_id = :uid)"
                " UNION SELECT content FROM knowledge_documents WHERE owner_id = :uid"
                " UNION SELECT content FROM memories WHERE user_id = :uid"
            ),
            {"uid": user_id, "uid_text": str(user_id)},
        )
        prints: set[str] = set()
        for (content,) in rows.all():
            prints |= fingerprint(content or "")
        return prints

    async def _name_rooms(self, user: User, rooms: list[str]) -> list[str]:
        """Rooms of the subject's organisation where nobody else, in the room or the
        organisation, bears their name; none when the name is not distinctive."""
        if not is_distinctive(user.name) or not rooms:
            return []
        rows = await self.session.execute(
            text(
                "SELECT r.id FROM rooms r WHERE r.id = ANY(CAST(:rooms AS uuid[]))"
                " AND r.org_id = :org"
                " AND NOT EXISTS (SELECT 1 FROM users u WHERE u.org_id = :org AND u.id <> :uid"
                "  AND lower(u.name) = lower(:name))"
                " AND NOT EXISTS (SELECT 1 FROM room_members m JOIN users u ON u.id = m.user_id"
                "  WHERE m.room_id = r.id AND u.id <> :uid AND lower(u.name) = lower(:name))"
            ),
            {"rooms": rooms, "org": user.org_id, "uid": user.id, "name": user.name},
        )
        return [str(r[0]) for r in rows.all()]

    async def get(self, request_id: uuid.UUID) -> Targets | None:
        row = await self.session.get(ErasureTarget, request_id, populate_existing=True)
        if row is None:
            return None
        return Targets(
            user_id=row.user_id,
            org_id=row.org_id,
            email=row.email,
            name=row.name,
            handle=row.handle,
            account_created_at=row.account_created_at,
            room_ids=[uuid.UUID(r) for r in row.room_ids],
            fingerprints=frozenset(row.text_fingerprints or ()),
            name_room_ids=[uuid.UUID(r) for r in row.name_room_ids or ()],
        )

    async def forget(self, request_id: uuid.UUID) -> None:
        await self._exec("DELETE FROM erasure_targets WHERE request_id = :rid", {"rid": request_id})

    async def purge_stale(self, max_age: timedelta = TARGETS_MAX_AGE) -> int:
        """The e-mail and name kept for the scans go once a request is over (complete or
        cancelled) and, whatever its state, after `max_age`: a request stuck in error does not
        keep them for ever (a retry then needs the account, i.e. runs from the freeze step)."""
        return await self._exec(
            "DELETE FROM erasure_targets t USING data_subject_requests r"
            " WHERE r.id = t.request_id AND (r.status IN ('complete', 'cancelled')"
            " OR t.created_at < now() - CAST(:age AS interval))",
            {"age": max_age},
        )
