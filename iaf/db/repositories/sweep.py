"""What the unrouted-message sweep reads: messages still waiting for RouteMessage (rule 5).

Both reads use the partial index `ix_messages_unrouted` (id WHERE routed_at IS NULL).
"""

from __future__ import annotations

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from iaf.db.models import Message


def _waiting(min_age_seconds: float) -> ColumnElement[bool]:
    return and_(
        Message.routed_at.is_(None),
        Message.created_at < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, min_age_seconds),
    )


class UnroutedRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def newest(self, min_age_seconds: float, limit: int) -> list[int]:
        """The most recent waiting messages, newest first: a new message never waits behind
        old ones that cannot be routed."""
        rows = await self.session.scalars(
            select(Message.id)
            .where(_waiting(min_age_seconds))
            .order_by(Message.id.desc())
            .limit(limit)
        )
        return list(rows)

    async def after(self, min_age_seconds: float, after_id: int, limit: int) -> list[int]:
        """Waiting messages with an id above `after_id`, in id order (the sweep's cursor)."""
        rows = await self.session.scalars(
            select(Message.id)
            .where(_waiting(min_age_seconds), Message.id > after_id)
            .order_by(Message.id)
            .limit(limit)
        )
        return list(rows)
