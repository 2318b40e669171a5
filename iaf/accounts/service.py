"""Accounts: a sign-up creates a person and their own organisation, an org admin adds
colleagues, a password login checks the account, and a session starts with an access token.

Nothing here commits: the caller commits the request's one transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.models import PasswordReset, User
from iaf.db.repositories.ledger import LedgerRepository
from iaf.db.repositories.password_resets import PasswordResetRepository
from iaf.db.repositories.users import UserRepository
from iaf.errors import ApiError
from iaf.mail.links import derive_token, new_salt, token_hash
from iaf.security import issue_access_token, password_matches
from iaf.settings import Settings
from schemas.auth import TokenResponse, UserOut

ORG_NAME_MAX = 200  # orgs.name is String(200)
_ORG_SUFFIX = "'s organisation"


def email_taken() -> ApiError:
    return ApiError(409, "email_taken", "an account with this e-mail already exists")


def default_org_name(user_name: str) -> str:
    """The default organisation name, "{name}'s organisation", shortened to fit orgs.name."""
    return user_name[: ORG_NAME_MAX - len(_ORG_SUFFIX)].rstrip() + _ORG_SUFFIX


def _violated_constraint(exc: IntegrityError) -> str | None:
    """The name of the unique index a flush violated (asyncpg reports it on the cause)."""
    for error in (exc.orig, getattr(exc.orig, "__cause__", None)):
        name = getattr(error, "constraint_name", None)
        if name:
            return str(name)
    return None


async def create_account(
    session: AsyncSession,
    email: str,
    create: Callable[[], Awaitable[User]],
    taken: Callable[[], ApiError] = email_taken,
) -> User:
    """Run `create` (org and user inserts) in a savepoint, so that a concurrent sign-up
    with the same e-mail becomes `taken` (409) instead of a unique-index error, and one
    that took the same derived handle first is simply retried (the handle is chosen again).
    """
    users = UserRepository(session)
    for attempt in range(3):
        try:
            async with session.begin_nested():
                return await create()
        except IntegrityError as exc:
            constraint = _violated_constraint(exc)
            if constraint == "uq_users_email_lower" or await users.email_taken(email):
                raise taken() from None
            if constraint != "uq_users_handle_lower" or attempt == 2:
                raise
    raise AssertionError("unreachable")


async def sign_up(
    session: AsyncSession,
    settings: Settings,
    *,
    email: str,
    name: str,
    password_hash: str,
    org_name: str | None = None,
    taken: Callable[[], ApiError] = email_taken,
) -> User:
    """A new person, org admin of a new organisation, with the starting credits."""
    users = UserRepository(session)
    if await users.email_taken(email):
        raise taken()

    async def create() -> User:
        org = await users.create_org(org_name or default_org_name(name))
        return await users.create(org.id, email, name, password_hash, "org_admin")

    user = await create_account(session, email, create, taken)
    await LedgerRepository(session).grant_starting_credits(user.id, settings.starting_credits)
    return user


async def add_colleague(
    session: AsyncSession,
    settings: Settings,
    org_id: uuid.UUID,
    *,
    email: str,
    name: str,
    password_hash: str,
    role: str,
) -> User:
    """A person in an existing organisation, added by its admin, with the starting credits."""
    users = UserRepository(session)
    if await users.email_taken(email):
        raise email_taken()

    async def create() -> User:
        return await users.create(org_id, email, name, password_hash, role)

    user = await create_account(session, email, create)
    await LedgerRepository(session).grant_starting_credits(user.id, settings.starting_credits)
    return user


async def password_login(session: AsyncSession, email: str, password: str) -> User:
    """The active account with this e-mail and password; one answer for every failure."""
    user = await UserRepository(session).get_by_email(email)
    valid = await password_matches(user.password_hash if user else None, password)
    if user is None or not valid or user.status != "active":
        raise ApiError(401, "invalid_credentials", "wrong e-mail or password")
    return user


def api_key_scopes(user: User, asked: Sequence[str] | None) -> list[str]:
    """The scopes a new key gets: those asked for, or all the owner's role allows; only a
    compliance user's key may carry `compliance` (the routes check the role as well)."""
    allowed = ["chat", "agents", "compliance"] if user.role == "compliance" else ["chat", "agents"]
    if asked is None:
        return allowed
    refused = sorted(set(asked) - set(allowed))
    if refused:
        raise ApiError(403, "scope_not_allowed", f"your role cannot grant {', '.join(refused)}")
    return sorted(set(asked))


def token_response(jwt_secret: str, settings: Settings, user: User) -> TokenResponse:
    minutes = settings.access_token_minutes
    token = issue_access_token(
        jwt_secret, user.id, user.org_id, user.role, user.token_version, minutes
    )
    return TokenResponse(
        access_token=token, expires_in=minutes * 60, user=UserOut.model_validate(user)
    )


# --- an org admin deactivates and reactivates colleagues ----------------------------------


async def _colleague_for_update(session: AsyncSession, admin: User, user_id: uuid.UUID) -> User:
    target = await UserRepository(session).for_update(user_id)
    if target is None or target.org_id != admin.org_id or target.status == "deleted":
        raise ApiError(404, "user_not_found", "no such person in your organisation")
    if target.id == admin.id:
        raise ApiError(409, "cannot_deactivate_self", "you cannot deactivate your own account")
    return target


async def deactivate(session: AsyncSession, admin: User, user_id: uuid.UUID) -> User:
    """The colleague can no longer sign in; their tokens, keys and open streams stop now."""
    target = await _colleague_for_update(session, admin, user_id)
    if target.status != "active":
        raise ApiError(409, "not_active", f"the account is {target.status}")
    await UserRepository(session).set_status(target, "deactivated")
    return target


async def reactivate(session: AsyncSession, admin: User, user_id: uuid.UUID) -> User:
    """Only a deactivated account comes back (not one being erased); old tokens stay dead."""
    target = await _colleague_for_update(session, admin, user_id)
    if target.status != "deactivated":
        raise ApiError(409, "not_deactivated", f"the account is {target.status}")
    await UserRepository(session).set_status(target, "active")
    return target


# --- password reset by e-mail -------------------------------------------------------------


async def request_password_reset(
    session: AsyncSession, settings: Settings, email: str
) -> PasswordReset | None:
    """A reset link for an active account, or None (the caller answers the same either way:
    whether an address has an account is not told)."""
    user = await UserRepository(session).get_by_email(email)
    if user is None or user.status != "active":
        return None
    salt = new_salt()
    token = derive_token(settings.secret("invitation_secret"), salt)
    valid_for = timedelta(minutes=settings.password_reset_minutes)
    return await PasswordResetRepository(session).create(
        user.id, token_hash(token), salt, valid_for
    )


async def withdraw_password_reset(session: AsyncSession, reset_id: uuid.UUID) -> None:
    reset = await PasswordResetRepository(session).get(reset_id)
    if reset is not None and reset.status == "pending":
        await PasswordResetRepository(session).close(reset, "superseded")


async def reset_password(session: AsyncSession, token: str, password_hash: str) -> User:
    """The link's holder sets a new password, once: every older token and stream ends."""
    resets = PasswordResetRepository(session)
    reset = await resets.by_token_hash_for_update(token_hash(token))
    if reset is None:
        raise ApiError(404, "link_not_found", "this reset link is not known")
    if reset.status == "expired" or reset.expires_at <= datetime.now(UTC):
        raise ApiError(410, "link_expired", "this link has expired; ask for a new one")
    if reset.status != "pending":
        raise ApiError(410, "link_used", "this link was used or replaced by a newer one")
    users = UserRepository(session)
    user = await users.for_update(reset.user_id)
    if user is None or user.status != "active":
        raise ApiError(410, "link_expired", "this account can no longer be changed")
    await users.set_password(user, password_hash)
    await resets.close(reset, "used")
    return user
