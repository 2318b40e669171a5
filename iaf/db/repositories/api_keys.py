"""API keys for programmatic clients: stored as a hash, revoked by stamping the row."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.models import ApiKey, User

LAST_USED_PRECISION = timedelta(minutes=1)


class ApiKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(
        self,
        user_id: uuid.UUID,
        name: str,
        prefix: str,
        key_hash: str,
        scopes: list[str],
        expires_at: datetime | None,
    ) -> ApiKey:
        key = ApiKey(
            user_id=user_id,
            name=name,
            prefix=prefix,
            key_hash=key_hash,
            scopes=scopes,
            expires_at=expires_at,
        )
        self.session.add(key)
        await self.session.flush()
        return key

    async def list_for(self, user_id: uuid.UUID) -> list[ApiKey]:
        rows = await self.session.scalars(
            select(ApiKey).where(ApiKey.user_id == user_id).order_by(ApiKey.created_at)
        )
        return list(rows)

    async def key_and_user(self, key_hash: str) -> tuple[ApiKey, User] | None:
        """A key that is neither revoked nor expired, with its user (one round trip)."""
        row = await self.session.execute(
            select(ApiKey, User)
            .join(User, ApiKey.user_id == User.id)
            .where(
                ApiKey.key_hash == key_hash,
                ApiKey.revoked_at.is_(None),
                or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > func.now()),
            )
        )
        found = row.one_or_none()
        return None if found is None else (found[0], found[1])

    async def note_use(self, key: ApiKey) -> None:
        """last_used_at to the minute: a write per minute and key, not one per request."""
        now = datetime.now(UTC)
        if key.last_used_at is not None and now - key.last_used_at < LAST_USED_PRECISION:
            return
        await self.session.execute(
            update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=func.now())
        )
        key.last_used_at = now

    async def revoke(self, user_id: uuid.UUID, key_id: uuid.UUID) -> bool:
        result = await self.session.execute(
            update(ApiKey)
            .where(ApiKey.id == key_id, ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]
