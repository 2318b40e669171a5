"""What both event streams (a room's and a person's) share: the SSE frame and where to resume."""

from __future__ import annotations

import json
from typing import Any

from sse_starlette import EventSourceResponse

from iaf.errors import ApiError
from schemas.common import MAX_BIGINT


class EventStream(EventSourceResponse):
    """An SSE response whose OpenAPI entry says text/event-stream (FastAPI reads the class's
    media type; sse-starlette's own leaves it unset, so the document said JSON)."""

    media_type = "text/event-stream"


# Each event as the OpenAPI document describes it (`data` is JSON text; see docs/DESIGN.md).
EVENT_SCHEMA: dict[str, object] = {
    "type": "object",
    "properties": {
        "event": {"type": "string"},
        "data": {"type": "string"},
        "id": {"type": "string"},
        "retry": {"type": "integer"},
    },
}
STREAM_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "description": "Server-Sent Events, one JSON `data` per event",
        "content": {"text/event-stream": {"schema": EVENT_SCHEMA}},
    }
}


def sse(event_id: int | None, type_: str, data: dict[str, Any]) -> dict[str, str]:
    frame = {"event": type_, "data": json.dumps(data, separators=(",", ":"), default=str)}
    if event_id is not None:
        frame["id"] = str(event_id)
    return frame


def resume_point(last_event_id: str | None, after: int | None) -> int | None:
    """The event id to resume after: refused (422) before the stream starts when it is not
    an event id at all, because a database error inside the stream would break it instead."""
    raw = last_event_id.strip() if last_event_id is not None else ""
    if not raw:
        return after
    # Plain ASCII digits only: int() would also take "1_000", "+5" or other scripts' digits.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19 or int(raw) > MAX_BIGINT:
        raise ApiError(
            422,
            "invalid_last_event_id",
            f"Last-Event-ID must be an event id: an integer from 0 to {MAX_BIGINT}",
        )
    return int(raw)
