"""The room event log: what clients replay (`room_events`) and what they only see live."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_INSERT_EVENT = text(
    "INSERT INTO room_events (room_id, type, data) VALUES (:room_id, :type, CAST(:data AS jsonb))"
    " RETURNING id"
)
_NOTIFY = text("SELECT pg_notify('room_events', :payload)")


def event_json(data: dict[str, Any]) -> str:
    return json.dumps(data, default=str, separators=(",", ":"))


class EventRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def append(self, room_id: uuid.UUID, type_: str, data: dict[str, Any]) -> int:
        """Insert one event; the table's triggers order it and NOTIFY every API replica."""
        result = await self.session.execute(
            _INSERT_EVENT, {"room_id": room_id, "type": type_, "data": event_json(data)}
        )
        return int(result.scalar_one())

    async def notify_ephemeral(self, room_id: uuid.UUID, type_: str, data: dict[str, Any]) -> None:
        """Typing and presence: delivered live, never stored, never replayed."""
        payload = {"room_id": str(room_id), "id": None, "type": type_, "data": data}
        await self.session.execute(_NOTIFY, {"payload": event_json(payload)})

    async def after(
        self, room_id: uuid.UUID, after_id: int, limit: int = 500
    ) -> list[tuple[int, str, dict[str, Any]]]:
        rows = await self.session.execute(
            text(
                "SELECT id, type, data FROM room_events WHERE room_id = :room_id AND id > :after"
                " ORDER BY id LIMIT :limit"
            ),
            {"room_id": room_id, "after": after_id, "limit": limit},
        )
        return [(int(r[0]), str(r[1]), dict(r[2])) for r in rows.all()]

    async def get(self, event_id: int) -> tuple[int, str, dict[str, Any]] | None:
        row = (
            await self.session.execute(
                text("SELECT id, type, data FROM room_events WHERE id = :id"), {"id": event_id}
            )
        ).first()
        return (int(row[0]), str(row[1]), dict(row[2])) if row else None

    async def latest_id(self, room_id: uuid.UUID) -> int:
        value = await self.session.scalar(
            text("SELECT coalesce(max(id), 0) FROM room_events WHERE room_id = :room_id"),
            {"room_id": room_id},
        )
        return int(value or 0)

    async def exists(self, room_id: uuid.UUID, type_: str, key: str, value: str) -> bool:
        """Whether the room's log holds an event of this type whose `key` is `value` (makes a
        once-only event idempotent for a step that may run again)."""
        found = await self.session.scalar(
            text(
                "SELECT 1 FROM room_events WHERE room_id = :room_id AND type = :type"
                " AND data ->> :key = :value LIMIT 1"
            ),
            {"room_id": room_id, "type": type_, "key": key, "value": value},
        )
        return found is not None
