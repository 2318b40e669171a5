"""A person's e-mail choice for notification digests (on unless they turned it off)."""

from __future__ import annotations

import uuid

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.models import NotificationSetting


class NotificationSettingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: uuid.UUID) -> NotificationSetting | None:
        return await self.session.get(NotificationSetting, user_id, populate_existing=True)

    async def set(self, user_id: uuid.UUID, email_digest: bool, changed_by: str) -> None:
        await self.session.execute(
            pg_insert(NotificationSetting)
            .values(user_id=user_id, email_digest=email_digest, changed_by=changed_by)
            .on_conflict_do_update(
                index_elements=["user_id"],
                set_={
                    "email_digest": email_digest,
                    "changed_by": changed_by,
                    "updated_at": func.now(),
                },
            )
        )
