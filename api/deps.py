"""Annotated dependencies: one place that says how a request gets its session, user and clients."""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client

from api.broker import RoomEventBroker
from api.db_breaker import DatabaseBreaker
from api.ratelimit import RateLimiter
from api.scopes import check_scopes
from api.streams import OpenStream, StreamRegistry
from iaf.db.models import User
from iaf.db.repositories.api_keys import ApiKeyRepository
from iaf.db.repositories.revoked_tokens import RevokedTokenRepository
from iaf.errors import ApiError
from iaf.files.store import FileStore
from iaf.security import API_KEY_PREFIX, decode_access_token, hash_token
from iaf.settings import Settings


class BoundedSet:
    """Remembers up to `size` recent keys; older ones are forgotten (a cache, never the truth)."""

    def __init__(self, size: int = 100_000) -> None:
        self.size = size
        self._keys: OrderedDict[object, None] = OrderedDict()

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def add(self, key: object) -> None:
        self._keys[key] = None
        if len(self._keys) > self.size:
            self._keys.popitem(last=False)


@dataclass
class AppState:
    """Clients built once in lifespan and shared by every request."""

    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    # Same pool, no BEGIN/COMMIT: for single-statement reads such as authentication.
    read_sessionmaker: async_sessionmaker[AsyncSession]
    temporal: Client
    broker: RoomEventBroker
    limiter: RateLimiter
    jwt_secret: str
    # Attachment bytes (a directory or an S3 bucket, iaf/files/store.py).
    files: FileStore
    # Users known to have no referral waiting for a first action: the post path skips a query.
    past_first_action: BoundedSet = field(default_factory=BoundedSet)
    # Each person's own events (user_events channel), for GET /api/events.
    user_broker: RoomEventBroker | None = None
    # Open SSE streams by person: the per-user cap, and closing them when credentials end.
    streams: StreamRegistry = field(default_factory=StreamRegistry)
    # Set in lifespan: 503 at once while PostgreSQL is unreachable (api/db_breaker.py).
    breaker: DatabaseBreaker | None = None


async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.iaf
    return state


StateDep = Annotated[AppState, Depends(get_state)]


async def get_settings_dep(state: StateDep) -> Settings:
    return state.settings


async def get_session(state: StateDep) -> AsyncIterator[AsyncSession]:
    async with state.sessionmaker() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "unauthorized", "missing bearer token", {"WWW-Authenticate": "Bearer"})
    return token.strip()


RouteKey = tuple[str, str]  # (method, path template): what an API key's scopes are checked on


def route_of(request: Request) -> RouteKey | None:
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return (request.method, path) if isinstance(path, str) else None


def open_stream(state: AppState, request: Request, user: User) -> OpenStream:
    """Counts the stream against the person's cap (429 past it) and keeps what it was
    authenticated with, to end it when that credential ends (api/streams.py)."""
    token = request.headers.get("authorization", "").partition(" ")[2].strip()
    route = route_of(request) or (request.method, request.url.path)
    return state.streams.open(user.id, token, route, state.settings.sse_streams_per_user)


async def authenticate(
    token: str, state: AppState, session: AsyncSession, route: RouteKey | None = None
) -> User:
    """The active user behind an access token or an API key. A key must be unexpired and
    carry a scope the route accepts (api/scopes.py); without a route, keys are refused."""
    user: User | None
    if token.startswith(API_KEY_PREFIX):
        found = await ApiKeyRepository(session).key_and_user(hash_token(token))
        if found is None:
            raise unauthorized()
        key, user = found
        if user.status == "active":
            method, path = route or ("", "")
            check_scopes(key.scopes, method, path)
            await ApiKeyRepository(session).note_use(key)
    else:
        claims = decode_access_token(state.jwt_secret, token)
        user = None
        if claims is not None:
            try:
                # One round trip: the user, unless this token was signed out.
                user = await RevokedTokenRepository(session).user_unless_revoked(
                    uuid.UUID(claims["sub"]), claims.get("jti")
                )
            except ValueError:
                user = None
            if user is not None and user.token_version != claims.get("ver"):
                user = None
    if user is None or user.status != "active":
        raise unauthorized()
    return user


async def optional_user(request: Request, state: AppState, session: AsyncSession) -> User | None:
    """The caller when the request is signed, None when it carries no Authorization header."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "malformed Authorization header")
    return await authenticate(token.strip(), state, session, route_of(request))


async def get_current_user(request: Request, state: StateDep) -> User:
    """Authenticates on its own autocommit connection, returned before the route runs: one
    round trip, and a route never waits for a second connection while holding this one."""
    async with state.read_sessionmaker() as session:
        return await authenticate(_bearer(request), state, session, route_of(request))


CurrentUser = Annotated[User, Depends(get_current_user)]


@dataclass(frozen=True)
class Claimant:
    """Who a request says it is, with the token's signature and expiry checked but not yet the
    account: a route that confirms the account in its own statement (posting a message) saves
    the round trip get_current_user makes."""

    user_id: uuid.UUID
    # The token's version claim, to check against the account; None when the account was
    # checked already (an API key is looked up in the database).
    token_version: int | None
    # The token's id, refused once signed out (POST /api/auth/logout).
    token_id: str | None = None


async def get_claimant(request: Request, state: StateDep) -> Claimant:
    token = _bearer(request)
    if token.startswith(API_KEY_PREFIX):
        user = await get_current_user(request, state)
        return Claimant(user.id, None)
    claims = decode_access_token(state.jwt_secret, token)
    if claims is None:
        raise unauthorized()
    try:
        jti = claims.get("jti")
        token_id = str(jti) if jti is not None else None
        return Claimant(uuid.UUID(str(claims["sub"])), int(claims["ver"]), token_id)
    except (ValueError, TypeError):
        raise unauthorized() from None


def unauthorized() -> ApiError:
    return ApiError(
        401, "unauthorized", "invalid or expired credentials", {"WWW-Authenticate": "Bearer"}
    )


ClaimantDep = Annotated[Claimant, Depends(get_claimant)]


def require_role(user: User, *roles: str) -> None:
    if user.role not in roles:
        raise ApiError(403, "forbidden", f"requires role {' or '.join(roles)}")
