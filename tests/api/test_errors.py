"""The error handlers: a value the database refuses is the client's 422, a fault stays a 500."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.errors import install_error_handlers
from iaf.db.engine import make_engine
from iaf.errors import ApiError

# Each query reaches the real PostgreSQL (or asyncpg's argument encoding) with a bad value.
CLIENT_MISTAKES: dict[str, tuple[str, dict[str, Any]]] = {
    "invalid_text_representation": ("SELECT CAST(:v AS text)::integer", {"v": "not a number"}),
    "numeric_out_of_range": ("SELECT CAST(:v AS text)::smallint", {"v": "99999"}),
    "nul_in_text": ("SELECT CAST(:v AS text)", {"v": "a\x00b"}),
    "string_right_truncation": ("INSERT INTO short_text VALUES (:v)", {"v": "too long"}),
    "int_beyond_64_bits": ("SELECT CAST(:v AS bigint)", {"v": 2**64}),
    "lone_surrogate": ("SELECT CAST(:v AS text)", {"v": "\ud800"}),
}

SHORT_TEXT = "CREATE TEMP TABLE IF NOT EXISTS short_text (v varchar(3))"


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_url, 1)
    yield engine
    await engine.dispose()


@pytest.fixture
async def http(engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/mistake/{name}")
    async def mistake(name: str) -> dict[str, str]:
        statement, params = CLIENT_MISTAKES[name]
        async with engine.connect() as connection:
            await connection.execute(text(SHORT_TEXT))
            await connection.execute(text(statement), params)
        return {"status": "stored"}

    @app.get("/fault/{kind}")
    async def fault(kind: str) -> dict[str, str]:
        async with engine.connect() as connection:
            if kind == "table":
                await connection.execute(text("SELECT * FROM no_such_table"))
            else:  # a value of the wrong Python type is the code's bug, not the client's
                await connection.execute(text("SELECT CAST(:v AS integer)"), {"v": "7"})
        return {"status": "?"}

    @app.get("/quoted")
    async def quoted() -> dict[str, str]:
        raise ApiError(422, "invalid_request", "field \ud800 is unknown")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@pytest.mark.parametrize("name", sorted(CLIENT_MISTAKES))
async def test_values_the_database_refuses_are_a_422_logged_as_a_warning(http, name, caplog):
    with caplog.at_level(logging.WARNING, logger="api.errors"):
        response = await http.get(f"/mistake/{name}")
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_value"
    records = [r for r in caplog.records if r.name == "api.errors"]
    assert [r.levelno for r in records] == [logging.WARNING]


@pytest.mark.parametrize("kind", ["table", "type"])
async def test_a_genuine_database_fault_is_still_a_500(http, kind, caplog):
    with caplog.at_level(logging.WARNING, logger="api.errors"):
        response = await http.get(f"/fault/{kind}")
    assert response.status_code == 500
    assert response.json() == {"error": {"code": "internal_error", "message": "internal error"}}
    assert any(r.levelno == logging.ERROR for r in caplog.records if r.name == "api.errors")


async def test_an_error_message_quoting_a_lone_surrogate_is_still_json(http):
    response = await http.get("/quoted")
    assert response.status_code == 422
    assert response.json()["error"]["message"].startswith("field ")
