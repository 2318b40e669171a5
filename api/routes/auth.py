"""Sign-up, login, the current user, org members and API keys."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request, Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import CurrentUser, SessionDep, SettingsDep, StateDep, require_role
from api.errors import ApiError
from iaf.db.models import User
from iaf.db.repositories.api_keys import ApiKeyRepository
from iaf.db.repositories.ledger import LedgerRepository
from iaf.db.repositories.users import UserRepository
from iaf.security import hashed_password, issue_access_token, new_api_key, password_matches
from schemas.auth import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    LoginRequest,
    OrgUserCreate,
    SignupRequest,
    TokenResponse,
    UserOut,
)

router = APIRouter(tags=["auth"])


def token_response(state: StateDep, user: User) -> TokenResponse:
    minutes = state.settings.access_token_minutes
    token = issue_access_token(
        state.jwt_secret, user.id, user.org_id, user.role, user.token_version, minutes
    )
    return TokenResponse(
        access_token=token, expires_in=minutes * 60, user=UserOut.model_validate(user)
    )


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


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


@router.post("/api/auth/signup", status_code=201)
async def signup(
    body: SignupRequest, request: Request, state: StateDep, session: SessionDep
) -> TokenResponse:
    settings = state.settings
    await state.limiter.hit(
        f"auth-ip:{client_ip(request)}", settings.auth_requests_per_ip_per_minute, 60
    )
    # Hashed before the session takes a connection: argon2 is slow on purpose.
    password_hash = await hashed_password(body.password)
    users = UserRepository(session)
    if await users.email_taken(body.email):
        raise email_taken()

    async def create() -> User:
        org = await users.create_org(body.org_name or default_org_name(body.name))
        return await users.create(org.id, body.email, body.name, password_hash, "org_admin")

    user = await create_account(session, body.email, create)
    await LedgerRepository(session).grant_starting_credits(user.id, settings.starting_credits)
    await session.commit()
    return token_response(state, user)


@router.post("/api/auth/login")
async def login(
    body: LoginRequest, request: Request, state: StateDep, session: SessionDep
) -> TokenResponse:
    settings = state.settings
    await state.limiter.hit(
        f"auth-ip:{client_ip(request)}", settings.auth_requests_per_ip_per_minute, 60
    )
    await state.limiter.hit(f"login:{body.email.lower()}", settings.login_attempts_per_minute, 60)
    user = await UserRepository(session).get_by_email(body.email)
    valid = await password_matches(user.password_hash if user else None, body.password)
    if user is None or not valid or user.status != "active":
        raise ApiError(401, "invalid_credentials", "wrong e-mail or password")
    return token_response(state, user)


@router.get("/api/me")
async def me(user: CurrentUser) -> UserOut:
    return UserOut.model_validate(user)


@router.post("/api/org/users", status_code=201)
async def add_org_user(
    body: OrgUserCreate, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> UserOut:
    require_role(user, "org_admin")
    password_hash = await hashed_password(body.password)  # before the session connects
    users = UserRepository(session)
    if await users.email_taken(body.email):
        raise email_taken()

    async def create() -> User:
        return await users.create(user.org_id, body.email, body.name, password_hash, body.role)

    created = await create_account(session, body.email, create)
    await LedgerRepository(session).grant_starting_credits(created.id, settings.starting_credits)
    await session.commit()
    return UserOut.model_validate(created)


@router.get("/api/org/users")
async def list_org_users(user: CurrentUser, session: SessionDep) -> dict[str, list[UserOut]]:
    colleagues = await UserRepository(session).list_org(user.org_id)
    return {"items": [UserOut.model_validate(u) for u in colleagues]}


@router.post("/api/auth/api-keys", status_code=201)
async def create_api_key(
    body: ApiKeyCreate, user: CurrentUser, session: SessionDep
) -> ApiKeyCreated:
    raw, prefix, key_hash = new_api_key()
    key = await ApiKeyRepository(session).create(user.id, body.name, prefix, key_hash)
    await session.commit()
    return ApiKeyCreated(**ApiKeyOut.model_validate(key).model_dump(), key=raw)


@router.get("/api/auth/api-keys")
async def list_api_keys(user: CurrentUser, session: SessionDep) -> dict[str, list[ApiKeyOut]]:
    keys = await ApiKeyRepository(session).list_for(user.id)
    return {"items": [ApiKeyOut.model_validate(k) for k in keys]}


@router.delete("/api/auth/api-keys/{key_id}", status_code=204)
async def revoke_api_key(key_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> Response:
    if not await ApiKeyRepository(session).revoke(user.id, key_id):
        raise ApiError(404, "not_found", "no such active key")
    await session.commit()
    return Response(status_code=204)
