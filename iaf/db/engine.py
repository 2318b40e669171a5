"""Engines and sessions; URLs in settings are driver-neutral `postgresql://…`."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.asyncio import AsyncSession as AsyncSession


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


def make_engine(url: str, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(
        with_driver(url, "asyncpg"),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        # Errors quote their SQL parameters (message text, answers, e-mails) unless told not
        # to; those messages reach logs and, from activities, Temporal history (rule 2).
        hide_parameters=True,
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
