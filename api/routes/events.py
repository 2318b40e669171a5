"""The live room stream (SSE), read markers and typing."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Header, Query, Request, Response

from api.broker import LiveEvent, Subscription
from api.deps import AppState, CurrentUser, SessionDep, StateDep, open_stream
from api.presence import online
from api.sse import STREAM_RESPONSES, EventStream, resume_point, sse
from api.streams import OpenStream
from iaf.db.repositories.messages import MessageRepository
from iaf.db.repositories.room_events import EventRepository
from iaf.errors import ApiError
from iaf.privacy.guests import event_for_guest
from iaf.rooms import service as rooms
from iaf.rooms.service import room_for_member
from schemas.chat import ReadMarker, ReadMarkerOut
from schemas.common import MAX_BIGINT

router = APIRouter(prefix="/api/chat", tags=["events"])


async def _stored_since(
    state: AppState, room_id: uuid.UUID, after_id: int
) -> AsyncIterator[tuple[int, str, dict[str, Any]]]:
    """Replay from the table in short sessions: a stream never holds a pooled connection."""
    while True:
        async with state.sessionmaker() as session:
            batch = await EventRepository(session).after(room_id, after_id, 500)
        for row in batch:
            yield row
        if len(batch) < 500:
            return
        after_id = batch[-1][0]


async def announce_presence(
    state: AppState, room_id: uuid.UUID, user_id: uuid.UUID, status: str
) -> None:
    """Presence is ephemeral: a NOTIFY to every replica, never stored or replayed."""
    async with state.sessionmaker() as session:
        await EventRepository(session).notify_ephemeral(
            room_id, "presence", {"user_id": str(user_id), "status": status}
        )
        await session.commit()


async def room_stream(
    state: AppState,
    room_id: uuid.UUID,
    user_id: uuid.UUID,
    since: int | None,
    opened: OpenStream | None = None,
    guest: bool = False,
) -> AsyncIterator[dict[str, Any]]:
    """The room's events after `since`, then live; a guest reads them through event_for_guest."""
    view: Callable[[str, dict[str, Any]], dict[str, Any]] = event_for_guest if guest else _as_stored
    subscription: Subscription = state.broker.subscribe(str(room_id))
    if opened is not None:
        opened.wakeup = subscription.wakeup  # an ended credential wakes the stream up
    async with online(state.presence, user_id):
        frames = _room_frames(state, room_id, user_id, since, subscription, opened, view)
        async for frame in frames:
            yield frame


async def _room_frames(
    state: AppState,
    room_id: uuid.UUID,
    user_id: uuid.UUID,
    since: int | None,
    subscription: Subscription,
    opened: OpenStream | None,
    view: Callable[[str, dict[str, Any]], dict[str, Any]],
) -> AsyncIterator[dict[str, Any]]:
    try:
        await announce_presence(state, room_id, user_id, "online")
        if since is None:
            async with state.sessionmaker() as session:
                since = await EventRepository(session).latest_id(room_id)
        last = since
        async for event_id, type_, data in _stored_since(state, room_id, last):
            yield sse(event_id, type_, view(type_, data))
            last = event_id
        while True:
            if opened is not None and opened.ended:
                yield opened.final_frame()
                return
            await subscription.wakeup.wait()
            subscription.wakeup.clear()
            if opened is not None and opened.ended:
                continue
            if subscription.lagged.is_set():
                subscription.lagged.clear()
                async for event_id, type_, data in _stored_since(state, room_id, last):
                    yield sse(event_id, type_, view(type_, data))
                    last = event_id
                    if _removes(type_, data, user_id):
                        return
            while not subscription.queue.empty():
                live: LiveEvent = subscription.queue.get_nowait()
                if live.id is not None and live.id <= last:
                    continue
                yield sse(live.id, live.type, view(live.type, live.data))
                if live.id is not None:
                    last = live.id
                if _removes(live.type, live.data, user_id):
                    return
    finally:
        state.broker.unsubscribe(subscription)
        if opened is not None:
            state.streams.close(opened)
        if opened is None or opened.ended != "database_unavailable":
            with contextlib.suppress(Exception):
                await asyncio.shield(announce_presence(state, room_id, user_id, "offline"))


def _as_stored(type_: str, data: dict[str, Any]) -> dict[str, Any]:
    return data


def _removes(type_: str, data: dict[str, Any], user_id: uuid.UUID) -> bool:
    """A member who is removed, or everyone when the room is deleted, stops at once."""
    if type_ == "room.delete":
        return True
    return type_ == "member.remove" and data.get("user_id") == str(user_id)


@router.get("/rooms/{room_id}/events", response_class=EventStream, responses=STREAM_RESPONSES)
async def stream_events(
    room_id: uuid.UUID,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    state: StateDep,
    after: int | None = Query(default=None, ge=0, le=MAX_BIGINT),
    last_event_id: str | None = Header(default=None),
) -> EventStream:
    since = resume_point(last_event_id, after)
    room, _ = await room_for_member(session, room_id, user)
    guest = user.org_id != room.org_id
    await session.close()  # release the connection before the long-lived stream starts
    opened = open_stream(state, request, user)
    return EventStream(
        room_stream(state, room_id, user.id, since, opened, guest),
        ping=int(state.settings.sse_heartbeat_seconds) or 15,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.post("/rooms/{room_id}/read")
async def mark_read(
    room_id: uuid.UUID,
    body: ReadMarker,
    user: CurrentUser,
    session: SessionDep,
    state: StateDep,
    response: Response,
) -> ReadMarkerOut:
    room, _ = await room_for_member(session, room_id, user)
    limit = state.settings.read_markers_per_minute
    await state.limiter.hit(f"read:{user.id}", limit, 60, response, session)
    if not await MessageRepository(session).in_room(body.message_id, room_id):
        raise ApiError(422, "invalid_message", "message_id is not a message of this room")
    stored = await rooms.mark_read(session, room, user, body.message_id)
    await EventRepository(session).notify_ephemeral(
        room_id, "read", {"user_id": str(user.id), "message_id": stored}
    )
    await session.commit()
    return ReadMarkerOut(room_id=room_id, last_read_message_id=stored)


@router.post("/rooms/{room_id}/typing", status_code=202)
async def typing(
    room_id: uuid.UUID, user: CurrentUser, session: SessionDep, state: StateDep, response: Response
) -> dict[str, str]:
    await room_for_member(session, room_id, user)
    limit = state.settings.typing_per_minute
    await state.limiter.hit(f"typing:{user.id}", limit, 60, response, session)
    await EventRepository(session).notify_ephemeral(
        room_id, "typing", {"user_id": str(user.id), "name": user.name}
    )
    await session.commit()
    return {"status": "sent"}
