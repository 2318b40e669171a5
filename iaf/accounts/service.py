"""Accounts: a sign-up creates a person and their own organisation, an org admin adds
colleagues, a password login checks the account, and a session starts with an access token.

Nothing here commits: the caller commits the request's one transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.models import User
from iaf.db.repositories.ledger import LedgerRepository
from iaf.db.repositories.users import UserRepository
from iaf.errors import ApiError
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
