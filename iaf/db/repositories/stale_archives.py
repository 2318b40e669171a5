"""Export archives that no longer match the data: withdrawn, so a new export is asked for.

An archive is a person's copy of their data at one moment. When they edit or delete
something it holds, or when it names a person who is erased, it is withdrawn at once
(`archive_deleted_at`; the caller removes the file after the commit): the link stops
working and asking for an export starts a fresh one.
"""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_WITHDRAW = (
    "UPDATE data_subject_requests SET archive_deleted_at = now(), updated_at = now()"
    " WHERE kind = 'export' AND status = 'complete' AND archive_name IS NOT NULL"
    " AND archive_deleted_at IS NULL AND {which} RETURNING archive_name"
)


class StaleArchiveRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def withdraw_for(self, user_id: uuid.UUID) -> list[str]:
        """The person's own archives; the names of the files to remove."""
        rows = await self.session.execute(
            text(_WITHDRAW.format(which="subject_user_id = :uid")), {"uid": user_id}
        )
        return [str(r[0]) for r in rows.all()]

    async def withdraw_named(self, names: list[str]) -> list[str]:
        if not names:
            return []
        rows = await self.session.execute(
            text(_WITHDRAW.format(which="archive_name = ANY(:names)")), {"names": names}
        )
        return [str(r[0]) for r in rows.all()]
