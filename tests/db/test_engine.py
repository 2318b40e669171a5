"""The engine's disconnect handling against the real PostgreSQL."""

from __future__ import annotations

import psycopg
from sqlalchemy import text

from iaf.db import engine as engine_module
from iaf.db.engine import make_engine


async def test_an_idle_connection_killed_by_the_server_is_replaced_on_checkout(
    database_url, monkeypatch
):
    engine = make_engine(database_url, 1)
    try:
        async with engine.connect() as connection:
            first_pid = await connection.scalar(text("SELECT pg_backend_pid()"))
        with psycopg.connect(database_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (first_pid,))
        monkeypatch.setattr(engine_module, "STALE_AFTER_SECONDS", 0.0)
        async with engine.connect() as connection:
            second_pid = await connection.scalar(text("SELECT pg_backend_pid()"))
        assert second_pid != first_pid
    finally:
        await engine.dispose()
