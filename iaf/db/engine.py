"""Engines and sessions; URLs in settings are driver-neutral `postgresql://…`."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.asyncio import AsyncSession as AsyncSession
from sqlalchemy.pool import ConnectionPoolEntry


def with_driver(url: str, driver: str) -> str:
    scheme, rest = url.split("://", 1)
    base = scheme.split("+", 1)[0]
    if base == "postgres":
        base = "postgresql"
    return f"{base}+{driver}://{rest}"


def plain_url(url: str) -> str:
    """The URL asyncpg/psycopg accept directly (no SQLAlchemy driver suffix)."""
    scheme, rest = url.split("://", 1)
    return f"postgresql://{rest}" if scheme.startswith("postgres") else url


# A pooled connection idle for longer than this is pinged before use (see _ping_if_idle).
STALE_AFTER_SECONDS = 10.0


def make_engine(url: str, pool_size: int = 10, connect_timeout: float = 5.0) -> AsyncEngine:
    engine = create_async_engine(
        with_driver(url, "asyncpg"),
        pool_size=pool_size,
        max_overflow=pool_size,
        # asyncpg waits 60 s for a server that accepts TCP and never answers (a stall).
        connect_args={"timeout": connect_timeout},
        # Errors quote their SQL parameters (message text, answers, e-mails) unless told not
        # to; those messages reach logs and, from activities, Temporal history (rule 2).
        hide_parameters=True,
    )
    event.listen(engine.sync_engine.pool, "checkin", _note_checkin)
    event.listen(engine.sync_engine.pool, "checkout", _ping_if_idle)
    return engine


def _note_checkin(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    record.info["checked_in_at"] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: Any) -> None:
    """Pessimistic disconnect handling, but only for connections that sat idle: pool_pre_ping
    costs a round trip on every checkout (two per posted message), while a connection used a
    moment ago is as alive as a ping would show. A dead one makes the pool connect afresh."""
    checked_in = record.info.get("checked_in_at")
    if checked_in is None or time.monotonic() - checked_in < STALE_AFTER_SECONDS:
        return
    try:
        dbapi_connection.ping()
    except Exception as exc:
        raise DisconnectionError() from exc


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def autocommit_sessions(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> async_sessionmaker[AsyncSession]:
    """Sessions on the same pool whose every statement commits on its own: no BEGIN/COMMIT
    round trips, for work made of single-statement writes that must show at once (deltas)."""
    engine: AsyncEngine = sessionmaker.kw["bind"]
    return make_sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"))
