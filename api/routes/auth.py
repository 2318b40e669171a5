"""Sign-up, login, the current user, org members and API keys."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request, Response

from api.deps import CurrentUser, SessionDep, SettingsDep, StateDep, client_ip, require_role
from api.ratelimit import DAY_SECONDS, per_address
from iaf.accounts import service as accounts
from iaf.db.repositories.api_keys import ApiKeyRepository
from iaf.db.repositories.users import UserRepository
from iaf.errors import ApiError
from iaf.security import hashed_password, new_api_key
from iaf.workflow_calls import start_password_reset
from schemas.auth import (
    Accepted,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    LoginRequest,
    OrgUserCreate,
    PasswordResetConfirm,
    PasswordResetRequest,
    SignupRequest,
    TokenResponse,
    UserOut,
)

router = APIRouter(tags=["auth"])


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
    user = await accounts.sign_up(
        session,
        settings,
        email=body.email,
        name=body.name,
        password_hash=password_hash,
        org_name=body.org_name,
    )
    await session.commit()
    return accounts.token_response(state.jwt_secret, settings, user)


@router.post("/api/auth/login")
async def login(
    body: LoginRequest, request: Request, state: StateDep, session: SessionDep
) -> TokenResponse:
    settings = state.settings
    await state.limiter.hit(
        f"auth-ip:{client_ip(request)}", settings.auth_requests_per_ip_per_minute, 60
    )
    # Per account AND client address: a stranger guessing someone's password exhausts only
    # their own attempts, and cannot lock the person out (their address has its own count).
    login_bucket = per_address(f"login:{body.email.lower()}", client_ip(request))
    await state.limiter.hit(login_bucket, settings.login_attempts_per_minute, 60)
    user = await accounts.password_login(session, body.email, body.password)
    return accounts.token_response(state.jwt_secret, settings, user)


@router.post("/api/org/users", status_code=201)
async def add_org_user(
    body: OrgUserCreate,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    state: StateDep,
) -> UserOut:
    require_role(user, "org_admin")
    # Counted before the argon2 hash, on its own connection: refused attempts cost nothing.
    limit = settings.org_users_per_day
    await state.limiter.hit(f"org-users:{user.org_id}", limit, DAY_SECONDS)
    password_hash = await hashed_password(body.password)  # before the session connects
    created = await accounts.add_colleague(
        session,
        settings,
        user.org_id,
        email=body.email,
        name=body.name,
        password_hash=password_hash,
        role=body.role,
    )
    await session.commit()
    return UserOut.model_validate(created)


@router.post("/api/org/users/{user_id}/deactivate")
async def deactivate_org_user(
    user_id: uuid.UUID, user: CurrentUser, session: SessionDep
) -> UserOut:
    """The colleague's sign-in, tokens, API keys and open streams stop (seconds, every replica)."""
    require_role(user, "org_admin")
    target = await accounts.deactivate(session, user, user_id)
    await session.commit()
    return UserOut.model_validate(target)


@router.post("/api/org/users/{user_id}/reactivate")
async def reactivate_org_user(
    user_id: uuid.UUID, user: CurrentUser, session: SessionDep
) -> UserOut:
    require_role(user, "org_admin")
    target = await accounts.reactivate(session, user, user_id)
    await session.commit()
    return UserOut.model_validate(target)


@router.post("/api/auth/password-reset", status_code=202)
async def request_password_reset(
    body: PasswordResetRequest, request: Request, state: StateDep, session: SessionDep
) -> Accepted:
    """The same 202 whether or not the address has an account; a link is mailed if it does."""
    settings = state.settings
    await state.limiter.hit(
        f"auth-ip:{client_ip(request)}", settings.auth_requests_per_ip_per_minute, 60
    )
    bucket = f"password-reset:{body.email.lower()}"
    await state.limiter.hit(bucket, settings.password_resets_per_hour, 3600)
    reset = await accounts.request_password_reset(session, settings, body.email)
    await session.commit()
    if reset is not None:
        try:
            await start_password_reset(state.temporal, settings, reset.id, reset.user_id)
        except Exception:  # without its workflow no mail would go out: undo, and say so
            await accounts.withdraw_password_reset(session, reset.id)
            await session.commit()
            raise ApiError(
                503, "mail_unavailable", "the reset mail cannot be sent now; try again"
            ) from None
    return Accepted()


@router.post("/api/auth/password-reset/confirm")
async def confirm_password_reset(
    body: PasswordResetConfirm, request: Request, state: StateDep, session: SessionDep
) -> TokenResponse:
    """Sets the new password from the mailed link and signs in; every other session ends."""
    settings = state.settings
    await state.limiter.hit(
        f"auth-ip:{client_ip(request)}", settings.auth_requests_per_ip_per_minute, 60
    )
    password_hash = await hashed_password(body.new_password)  # before the session connects
    user = await accounts.reset_password(session, body.token, password_hash)
    await session.commit()
    return accounts.token_response(state.jwt_secret, settings, user)


@router.get("/api/org/users")
async def list_org_users(user: CurrentUser, session: SessionDep) -> dict[str, list[UserOut]]:
    colleagues = await UserRepository(session).list_org(user.org_id)
    return {"items": [UserOut.model_validate(u) for u in colleagues]}


@router.post("/api/auth/api-keys", status_code=201)
async def create_api_key(
    body: ApiKeyCreate, user: CurrentUser, session: SessionDep
) -> ApiKeyCreated:
    scopes = accounts.api_key_scopes(user, body.scopes)
    expires_at = datetime.now(UTC) + timedelta(days=body.expires_in_days)
    raw, prefix, key_hash = new_api_key()
    key = await ApiKeyRepository(session).create(
        user.id, body.name, prefix, key_hash, scopes, expires_at
    )
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
