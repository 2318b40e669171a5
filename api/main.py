"""The FastAPI application: clients built in lifespan, routers included, web client served at /."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.broker import LiveEvent, RoomEventBroker
from api.db_breaker import DatabaseAvailability, DatabaseBreaker
from api.deps import AppState, authenticate
from api.errors import error_response, install_error_handlers
from api.openapi import install_openapi
from api.ratelimit import RateLimiter
from api.routes import (
    agents,
    attachments,
    auth,
    compliance,
    credits,
    events,
    gdpr_user,
    health,
    invitations,
    knowledge,
    knowledge_sources,
    legal,
    me,
    memories,
    messages,
    openai_compat,
    replies,
    rooms,
    search,
    user_events,
)
from api.streams import CredentialWatch, OpenStream
from api.telemetry import HttpTelemetry
from api.telemetry import router as metrics_router
from api.web_client import install_web_client
from iaf.db.engine import autocommit_sessions, make_engine, make_sessionmaker, plain_url
from iaf.db.repositories.room_events import EventRepository
from iaf.files.store import file_store
from iaf.settings import Settings, get_settings
from iaf.temporal_client import connect

MAX_BODY_BYTES = 1024 * 1024
ATTACHMENT_UPLOAD = re.compile(r"/api/chat/rooms/[^/]+/attachments")


class BodyTooLarge(StarletteHTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"body over {limit} bytes")


class BodySizeLimit:
    """Refuse oversized bodies (413, JSON): by Content-Length before they are read, and, for a
    chunked body without one, once the bytes read pass the limit."""

    def __init__(
        self, app: ASGIApp, limit: int, larger: tuple[tuple[re.Pattern[str], int], ...] = ()
    ) -> None:
        self.app = app
        self.limit = limit
        # Paths that take more (file uploads), by pattern.
        self.larger = larger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = next((n for p, n in self.larger if p.fullmatch(scope["path"])), self.limit)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:  # the server reads no more than the declared length
            if length.isdigit() and int(length) > limit:
                response = error_response(413, "payload_too_large", f"body over {limit} bytes")
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
                if received > limit:
                    raise BodyTooLarge(limit)  # FastAPI answers it as a JSON 413
            return message

        await self.app(scope, counted, send)


async def no_fetch(_event_id: int) -> LiveEvent | None:
    """user_events notices always carry their (small, id-only) data."""
    return None


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(
            settings.database_url,
            settings.database_pool_size,
            settings.database_connect_timeout_seconds,
        )
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
        app.state.iaf = state = AppState(
            settings=settings,
            engine=engine,
            sessionmaker=sessionmaker,
            read_sessionmaker=autocommit_sessions(sessionmaker),
            temporal=await connect(settings, lazy=True),
            broker=broker,
            limiter=RateLimiter(engine),
            jwt_secret=settings.secret("jwt_secret"),
            user_broker=user_broker,
            files=file_store(settings),
        )
        watch, breaker = await start_guards(state)
        try:
            yield
        finally:
            await breaker.stop()
            await watch.stop()
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
    install_openapi(app)
    # An attachment may be larger than any JSON body (multipart framing included).
    uploads = ((ATTACHMENT_UPLOAD, settings.attachment_max_bytes + 64 * 1024),)
    app.add_middleware(BodySizeLimit, limit=MAX_BODY_BYTES, larger=uploads)
    app.add_middleware(DatabaseAvailability)
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
    feature_routers = (search, legal, attachments, knowledge_sources)
    for module in (*routers, gdpr_user, compliance, *agent_routers, *feature_routers):
        app.include_router(module.router)
    app.include_router(metrics_router)
    install_web_client(app)
    return app


async def start_guards(state: AppState) -> tuple[CredentialWatch, DatabaseBreaker]:
    """What keeps streams honest: ended when their credentials end (a NOTIFY from the
    database) and when the database becomes unreachable (the breaker's probe)."""
    settings = state.settings

    async def verify(stream: OpenStream) -> None:
        async with state.read_sessionmaker() as session:
            await authenticate(stream.token, state, session, stream.route)

    dsn = plain_url(settings.database_url)
    watch = CredentialWatch(dsn, state.streams, verify)
    await watch.start()
    retry_ms = int(settings.database_retry_after_seconds * 1000)

    def end_streams() -> None:
        state.streams.end_all("database_unavailable", retry_ms)

    breaker = DatabaseBreaker(
        dsn,
        settings.database_probe_interval_seconds,
        settings.database_probe_timeout_seconds,
        settings.database_retry_after_seconds,
        on_open=end_streams,
    )
    state.breaker = breaker
    await breaker.start()
    return watch, breaker
