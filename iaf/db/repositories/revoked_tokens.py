"""Signed-out access tokens, by their `jti`, until they would have expired anyway."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, exists, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.models import RevokedToken, User


class RevokedTokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def revoke(self, jti: str, user_id: uuid.UUID, expires_at: datetime) -> None:
        await self.session.execute(
            pg_insert(RevokedToken)
            .values(jti=jti, user_id=user_id, expires_at=expires_at)
            .on_conflict_do_nothing(index_elements=["jti"])
        )
        # Expired entries can go: their tokens are refused for their age already.
        await self.session.execute(delete(RevokedToken).where(RevokedToken.expires_at < func.now()))

    async def user_unless_revoked(self, user_id: uuid.UUID, jti: str | None) -> User | None:
        """The token's user, in the same round trip as the sign-out check."""
        query = select(User).where(User.id == user_id)
        if jti is not None:
            query = query.where(~exists().where(RevokedToken.jti == jti))
        return await self.session.scalar(query)
