"""Shared by the privacy tests: where a text still is (every PostgreSQL column, Qdrant
payloads, Temporal histories, archives), what a member replays, how long to wait."""

from __future__ import annotations

import asyncio
import io
import zipfile
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from temporalio.client import Client

from iaf.retrieval.vectors import VectorBackend
from tests.helpers import Person, SSEEvent, open_stream

T = TypeVar("T")
TERMINAL = ("done", "error", "cancelled")


def text_columns(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    return [
        (str(t), str(c))
        for t, c in conn.execute(
            "SELECT c.table_name, c.column_name FROM information_schema.columns c"
            " JOIN information_schema.tables t ON t.table_schema = c.table_schema"
            " AND t.table_name = c.table_name WHERE c.table_schema = 'public'"
            " AND t.table_type = 'BASE TABLE' AND c.data_type IN ('text', 'character varying',"
            " 'json', 'jsonb', 'ARRAY') ORDER BY 1, 2"
        ).fetchall()
    ]


def postgres_holding(database_url: str, needles: list[str]) -> dict[str, list[str]]:
    """{needle: ["table.column", ...]} for every needle some column still holds."""
    found: dict[str, list[str]] = {}
    with psycopg.connect(database_url) as conn:
        for table, column in text_columns(conn):
            query = sql.SQL("SELECT {col}::text FROM {tbl} WHERE {col}::text ILIKE ANY(%s)").format(
                col=sql.Identifier(column), tbl=sql.Identifier(table)
            )
            patterns = [f"%{n}%" for n in needles]
            for (value,) in conn.execute(query, (patterns,)).fetchall():
                for needle in needles:
                    if needle.lower() in str(value).lower():
                        found.setdefault(needle, []).append(f"{table}.{column}")
    return found


async def qdrant_holding(vectors: VectorBackend, needles: list[str]) -> dict[str, list[str]]:
    """{needle: [collection, ...]} for every needle some point's payload still holds."""
    found: dict[str, list[str]] = {}
    for collection in await vectors.collections():
        offset: str | None = None
        while True:
            points, offset = await vectors.scroll(collection, 1000, offset)
            for point in points:
                payload = str(point.payload or {}).lower()
                for needle in needles:
                    if needle.lower() in payload:
                        found.setdefault(needle, []).append(collection)
            if offset is None:
                break
    return found


async def temporal_holding(
    temporal: Client, needles: list[str], query: str | None = None
) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    async for execution in temporal.list_workflows(query):
        handle = temporal.get_workflow_handle(execution.id, run_id=execution.run_id)
        try:
            history = await handle.fetch_history()
        except Exception:  # deleted between listing and fetching
            continue
        blob = b"".join(e.SerializeToString() for e in history.events).decode("utf-8", "replace")
        for needle in needles:
            if needle.lower() in blob.lower():
                found.setdefault(needle, []).append(execution.id)
    return found


def archive_text(content: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return "\n".join(
            archive.read(name).decode("utf-8", "replace") for name in archive.namelist()
        )


def latest_event_id(database_url: str, room_id: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT coalesce(max(id), 0) FROM room_events WHERE room_id = %s", (room_id,)
        ).fetchone()
    return int(row[0]) if row else 0


async def replay(client: Any, person: Person, room_id: str, database_url: str) -> list[SSEEvent]:
    """Every stored event of the room as `person` replays it from Last-Event-ID 0."""
    last = latest_event_id(database_url, room_id)
    async with open_stream(client, person, room_id, last_event_id=0) as stream:
        if last:
            await stream.wait_for(lambda e: e.id is not None and e.id >= last, 30)
        return [e for e in stream.events if e.id is not None]


async def eventually(
    probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], within: float = 60.0
) -> T:
    """Poll `probe` until `done(value)`; the last value (the caller asserts on it)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = await probe()
        if done(value) or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(0.1)


def run_status(database_url: str, reply_id: str) -> str | None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT status FROM agent_runs WHERE reply_id = %s", (reply_id,)
        ).fetchone()
    return str(row[0]) if row else None


async def reply_over(database_url: str, reply_id: str, within: float = 90.0) -> str | None:
    async def status() -> str | None:
        return run_status(database_url, reply_id)

    return await eventually(status, lambda s: s in TERMINAL, within)
