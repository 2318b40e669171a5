"""API keys for programmatic clients: stored as a hash, revoked by stamping the row."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.models import ApiKey, User


class ApiKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(self, user_id: uuid.UUID, name: str, prefix: str, key_hash: str) -> ApiKey:
        key = ApiKey(user_id=user_id, name=name, prefix=prefix, key_hash=key_hash)
        self.session.add(key)
        await self.session.flush()
        return key

    async def list_for(self, user_id: uuid.UUID) -> list[ApiKey]:
        rows = await self.session.scalars(
            select(ApiKey).where(ApiKey.user_id == user_id).order_by(ApiKey.created_at)
        )
        return list(rows)

    async def user_for_key(self, key_hash: str) -> User | None:
        row = await self.session.execute(
            select(User)
            .join(ApiKey, ApiKey.user_id == User.id)
            .where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
        )
        return row.scalar_one_or_none()

    async def revoke(self, user_id: uuid.UUID, key_id: uuid.UUID) -> bool:
        result = await self.session.execute(
            update(ApiKey)
            .where(ApiKey.id == key_id, ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]
