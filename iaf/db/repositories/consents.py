"""Consents per purpose, and the history of every change."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.models import Consent, ConsentChange

PURPOSES = ("analytics", "marketing", "ai_training")


class ConsentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def current(self, user_id: uuid.UUID) -> dict[str, Consent]:
        rows = await self.session.scalars(select(Consent).where(Consent.user_id == user_id))
        return {c.purpose: c for c in rows}

    async def set(self, user_id: uuid.UUID, changes: dict[str, bool]) -> list[str]:
        """Store the choices; each real change goes to the history. Returns the changed purposes."""
        current = await self.current(user_id)
        changed = [
            p for p, granted in changes.items() if p not in current or current[p].granted != granted
        ]
        for purpose in changed:
            granted = changes[purpose]
            await self.session.execute(
                pg_insert(Consent)
                .values(user_id=user_id, purpose=purpose, granted=granted)
                .on_conflict_do_update(
                    index_elements=["user_id", "purpose"],
                    set_={"granted": granted, "updated_at": func.now()},
                )
            )
            self.session.add(ConsentChange(user_id=user_id, purpose=purpose, granted=granted))
        await self.session.flush()
        return changed

    async def history(self, user_id: uuid.UUID, limit: int = 500) -> list[ConsentChange]:
        rows = await self.session.scalars(
            select(ConsentChange)
            .where(ConsentChange.user_id == user_id)
            .order_by(ConsentChange.id.desc())
            .limit(limit)
        )
        return list(rows)
