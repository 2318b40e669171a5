"""What an erasure searches for, captured before the account and its memberships go.

The e-mail and name kept here never outlive the request (complete or cancelled) nor
TARGETS_MAX_AGE, whatever the request's state.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.models import ErasureTarget, User

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


class ErasureTargetRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def _exec(self, sql: str, params: dict[str, Any]) -> int:
        result = await self.session.execute(text(sql), params)
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def capture(self, request_id: uuid.UUID, user: User) -> None:
        """Remember what to search for before the account and its memberships disappear."""
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
            )
            .on_conflict_do_nothing(index_elements=["request_id"])
        )

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
