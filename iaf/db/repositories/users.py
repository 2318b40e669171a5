"""Organisations and users; every person's @handle is unique, derived from the name."""

from __future__ import annotations

import re
import secrets
import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.models import Org, RoomMember, User


def handle_from(name: str, email: str) -> str:
    base = re.sub(r"[^a-z0-9_-]+", "", name.lower().replace(" ", "-"))[:24].strip("-_")
    return base or re.sub(r"[^a-z0-9_-]+", "", email.split("@", 1)[0].lower())[:24] or "user"


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: uuid.UUID) -> User | None:
        return await self.session.get(User, user_id)

    async def get_by_email(self, email: str) -> User | None:
        result = await self.session.execute(
            select(User).where(func.lower(User.email) == email.lower())
        )
        return result.scalar_one_or_none()

    async def list_org(self, org_id: uuid.UUID) -> list[User]:
        """Active and deactivated colleagues (an admin reactivates the latter)."""
        rows = await self.session.scalars(
            select(User)
            .where(User.org_id == org_id, User.status.in_(("active", "deactivated")))
            .order_by(User.created_at)
        )
        return list(rows)

    async def for_update(self, user_id: uuid.UUID) -> User | None:
        return await self.session.scalar(select(User).where(User.id == user_id).with_for_update())

    async def set_status(self, user: User, status: str) -> None:
        """Every token issued before stops working (version bump); the `credentials` trigger
        tells every API replica, which ends the person's open streams."""
        user.status = status
        user.token_version = user.token_version + 1
        await self.session.flush()

    async def set_password(self, user: User, password_hash: str) -> None:
        user.password_hash = password_hash
        user.token_version = user.token_version + 1
        await self.session.flush()

    async def email_taken(self, email: str) -> bool:
        return await self.get_by_email(email) is not None

    async def create_org(self, name: str) -> Org:
        org = Org(name=name)
        self.session.add(org)
        await self.session.flush()
        return org

    async def create(
        self, org_id: uuid.UUID, email: str, name: str, password_hash: str, role: str
    ) -> User:
        user = User(
            org_id=org_id,
            email=email,
            name=name,
            handle=await self._free_handle(handle_from(name, email)),
            password_hash=password_hash,
            role=role,
            status="active",
            token_version=0,
        )
        self.session.add(user)
        await self.session.flush()
        return user

    async def _free_handle(self, base: str) -> str:
        candidate = base
        while await self.session.scalar(
            select(func.count()).select_from(User).where(func.lower(User.handle) == candidate)
        ):
            candidate = f"{base}-{secrets.token_hex(2)}"
        return candidate

    async def handles_in_room(self, room_id: uuid.UUID) -> dict[str, uuid.UUID]:
        rows = await self.session.execute(
            select(User.handle, User.id)
            .join(RoomMember, RoomMember.user_id == User.id)
            .where(RoomMember.room_id == room_id)
        )
        return {handle.lower(): user_id for handle, user_id in rows.all()}
