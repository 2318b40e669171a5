"""The FastAPI application: clients built in lifespan, routers included, web client served at /."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.broker import LiveEvent, RoomEventBroker
from api.deps import AppState
from api.errors import error_response, install_error_handlers
from api.presence import PresenceTracker
from api.ratelimit import RateLimiter
from api.routes import (
    agents,
    auth,
    compliance,
    credits,
    events,
    gdpr_user,
    health,
    invitations,
    knowledge,
    me,
    memories,
    messages,
    notifications,
    openai_compat,
    replies,
    rooms,
    user_events,
)
from api.telemetry import HttpTelemetry
from api.telemetry import router as metrics_router
from api.web_client import install_web_client
from iaf.db.engine import autocommit_sessions, make_engine, make_sessionmaker, plain_url
from iaf.db.repositories.room_events import EventRepository
from iaf.settings import Settings, get_settings
from iaf.temporal_client import connect

MAX_BODY_BYTES = 1024 * 1024


class BodyTooLarge(StarletteHTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"body over {limit} bytes")


class BodySizeLimit:
    """Refuse oversized bodies (413, JSON): by Content-Length before they are read, and, for a
    chunked body without one, once the bytes read pass the limit."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:  # the server reads no more than the declared length
            if length.isdigit() and int(length) > self.limit:
                response = error_response(413, "payload_too_large", f"body over {self.limit} bytes")
                await response(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(self.limit)  # FastAPI answers it as a JSON 413
            return message

        await self.app(scope, counted, send)


async def no_fetch(_event_id: int) -> LiveEvent | None:
    """user_events notices always carry their (small, id-only) data."""
    return None


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url, settings.database_pool_size)
        sessionmaker = make_sessionmaker(engine)

        async def fetch_event(event_id: int) -> LiveEvent | None:
            async with sessionmaker() as session:
                row = await EventRepository(session).get(event_id)
            return None if row is None else LiveEvent("", row[0], row[1], row[2])

        broker = RoomEventBroker(plain_url(settings.database_url), fetch_event)
        await broker.start()
        user_broker = RoomEventBroker(
            plain_url(settings.database_url), no_fetch, channel="user_events", key="user_id"
        )
        await user_broker.start()
        app.state.iaf = AppState(
            settings=settings,
            engine=engine,
            sessionmaker=sessionmaker,
            read_sessionmaker=autocommit_sessions(sessionmaker),
            temporal=await connect(settings, lazy=True),
            broker=broker,
            limiter=RateLimiter(engine),
            jwt_secret=settings.secret("jwt_secret"),
            user_broker=user_broker,
            presence=PresenceTracker(sessionmaker, settings),
        )
        assert app.state.iaf.presence is not None
        await app.state.iaf.presence.start()
        try:
            yield
        finally:
            await app.state.iaf.presence.stop()
            await user_broker.stop()
            await broker.stop()
            await engine.dispose()

    # /docs and /redoc are served by install_web_client, from vendored assets (no CDN).
    app = FastAPI(
        title="IAFactory Agents",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, limit=MAX_BODY_BYTES)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
        )
    app.add_middleware(HttpTelemetry)  # outermost: sees every response, 413s included
    routers = (health, auth, me, rooms, messages, events, user_events, invitations, credits)
    agent_routers = (agents, openai_compat, knowledge, memories, replies)
    for module in (*routers, gdpr_user, compliance, *agent_routers, notifications):
        app.include_router(module.router)
    app.include_router(metrics_router)
    install_web_client(app)
    return app
