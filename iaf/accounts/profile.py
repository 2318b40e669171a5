"""What a person changes in their own account: name, e-mail (confirmed by a mailed link),
password, sign-out. Refusals are ApiErrors; nothing here commits (the caller does)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from iaf.accounts.service import email_taken
from iaf.db.models import EmailChange, User
from iaf.db.repositories.accounts import AccountRepository
from iaf.db.repositories.email_changes import EmailChangeRepository
from iaf.db.repositories.revoked_tokens import RevokedTokenRepository
from iaf.errors import ApiError
from iaf.mail.links import derive_token, new_salt, token_hash
from iaf.security import hashed_password, password_matches
from iaf.settings import Settings
from schemas.profile import ProfileUpdate

EMAIL_LINK_VALID_FOR = timedelta(hours=24)


async def _locked(session: AsyncSession, user: User) -> User:
    found = await AccountRepository(session).for_update(user.id)
    if found is None or found.status != "active":
        raise ApiError(401, "unauthorized", "invalid or expired credentials")
    return found


async def update_profile(
    session: AsyncSession, settings: Settings, user: User, update: ProfileUpdate
) -> tuple[User, EmailChange | None]:
    """The name changes now; a new e-mail waits for its link (returned, to be mailed)."""
    account = await _locked(session, user)
    if update.name is not None:
        account.name = update.name
    change = None
    changes = EmailChangeRepository(session)
    if update.email is not None and update.email.lower() != account.email.lower():
        if await AccountRepository(session).email_used_by_another(update.email, account.id):
            raise email_taken()
        salt = new_salt()
        token = derive_token(settings.secret("invitation_secret"), salt)
        change = await changes.create(
            account.id, update.email, token_hash(token), salt, EMAIL_LINK_VALID_FOR
        )
    elif update.email is not None:
        await changes.close_pending(account.id, "superseded")  # back to the current address
    await session.flush()
    return account, change


async def withdraw_email_change(session: AsyncSession, change_id: uuid.UUID) -> None:
    change = await EmailChangeRepository(session).get(change_id)
    if change is not None and change.status == "pending":
        await EmailChangeRepository(session).close_pending(change.user_id, "superseded")


async def pending_email(session: AsyncSession, user: User) -> str | None:
    change = await EmailChangeRepository(session).pending_for(user.id)
    return change.new_email if change is not None else None


async def confirm_email(session: AsyncSession, token: str) -> User:
    """The link's holder confirms: the account's address becomes the new one, once."""
    changes = EmailChangeRepository(session)
    change = await changes.by_token_hash(token_hash(token))
    if change is None:
        raise ApiError(404, "link_not_found", "this confirmation link is not known")
    if change.status != "pending":
        raise ApiError(410, "link_used", "this link was used or replaced by a newer one")
    if change.expires_at <= datetime.now(UTC):
        raise ApiError(410, "link_expired", "this link has expired; change your e-mail again")
    accounts = AccountRepository(session)
    account = await accounts.for_update(change.user_id)
    if account is None or account.status != "active":
        raise ApiError(410, "link_expired", "this account can no longer be changed")
    if await accounts.email_used_by_another(change.new_email, account.id):
        raise email_taken()
    account.email = change.new_email
    await changes.confirm(change)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:  # someone signed up with this address meanwhile
        raise email_taken() from None
    return account


async def change_password(session: AsyncSession, user: User, current: str, new: str) -> User:
    """Every token issued before is revoked (version bump); the caller issues a new one."""
    if not await password_matches(user.password_hash, current):
        raise ApiError(403, "wrong_password", "the current password does not match")
    new_hash = await hashed_password(new)
    account = await _locked(session, user)
    await AccountRepository(session).set_password(account, new_hash)
    return account


async def sign_out(session: AsyncSession, user: User, claims: dict[str, Any]) -> None:
    """This token stops working now, on every API replica; the person's other sessions stay."""
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise ApiError(422, "not_revocable", "this token cannot be signed out; it has no id")
    expires = datetime.fromtimestamp(int(claims["exp"]), UTC)
    await RevokedTokenRepository(session).revoke(jti, user.id, expires)
