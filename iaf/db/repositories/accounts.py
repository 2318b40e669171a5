"""Changes a person makes to their own account: name, e-mail, password (with every older
token revoked by the version bump)."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.models import User


class AccountRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def for_update(self, user_id: uuid.UUID) -> User | None:
        return await self.session.scalar(select(User).where(User.id == user_id).with_for_update())

    async def email_used_by_another(self, email: str, user_id: uuid.UUID) -> bool:
        found = await self.session.scalar(
            select(User.id).where(func.lower(User.email) == email.lower(), User.id != user_id)
        )
        return found is not None

    async def set_password(self, user: User, password_hash: str) -> None:
        user.password_hash = password_hash
        user.token_version = user.token_version + 1
        await self.session.flush()
