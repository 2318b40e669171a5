"""A person's e-mail digest choice: read and changed in the settings, or turned off by the
unsubscribe link. Nothing here commits: the caller commits the request's transaction."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.models import User
from iaf.db.repositories.notification_settings import NotificationSettingRepository
from iaf.db.repositories.users import UserRepository
from iaf.errors import ApiError
from iaf.notifications.unsubscribe import read_unsubscribe_token
from iaf.settings import Settings
from schemas.notifications import NotificationSettingsOut


async def settings_of(
    session: AsyncSession, user: User, settings: Settings
) -> NotificationSettingsOut:
    stored = await NotificationSettingRepository(session).get(user.id)
    return NotificationSettingsOut(
        email_digest=stored.email_digest if stored is not None else True,
        digest_minutes=settings.notification_digest_minutes,
        changed_by=stored.changed_by if stored is not None else None,
        updated_at=stored.updated_at if stored is not None else None,
    )


async def choose(session: AsyncSession, user: User, email_digest: bool) -> None:
    await NotificationSettingRepository(session).set(user.id, email_digest, "settings")


async def unsubscribe(session: AsyncSession, settings: Settings, token: str) -> User:
    """Turn digests off for the token's person; 400 for anything that is not such a token
    (the same answer for a forged token and for a person who is gone)."""
    user_id = read_unsubscribe_token(settings.secret("unsubscribe_secret"), token)
    user = await UserRepository(session).get(user_id) if user_id is not None else None
    if user is None:
        raise ApiError(400, "invalid_token", "this unsubscribe link is not valid")
    await NotificationSettingRepository(session).set(user.id, False, "unsubscribe_link")
    return user
