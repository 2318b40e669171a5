"""GET /api/events: a person's own live stream: their room list as it changes.

Two sources. Durable events come from `user_events` (rooms joined or left, role changes,
renamed and deleted rooms, mentions): replayed from the table after Last-Event-ID, then live
from the user_events channel. Unread activity comes live from the rooms' own broker
subscriptions (`room.message`, ids only, no text): it is not stored per person, because
fanning every message out to every member's log would multiply each post's writes by the
room's size. After a gap the client re-reads the room list, whose unread counts the server
computes from read markers; `rooms.resync` says when this stream itself lost room activity.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Header, Query, Request

from api.broker import LiveEvent, Subscription
from api.deps import AppState, CurrentUser, StateDep, open_stream
from api.presence import online
from api.sse import STREAM_RESPONSES, EventStream, resume_point, sse
from api.streams import OpenStream
from iaf.db.repositories.user_events import UserEventRepository
from schemas.common import MAX_BIGINT

router = APIRouter(tags=["events"])

REPLAY_BATCH = 500


class RoomFollower:
    """The rooms whose messages count as unread for the person, kept in step with joins."""

    def __init__(self, state: AppState, activity: Subscription) -> None:
        self.state = state
        self.activity = activity
        self.rooms: dict[str, Subscription] = {}

    def follow(self, room_id: str) -> None:
        if room_id not in self.rooms:
            self.rooms[room_id] = self.state.broker.subscribe(room_id, into=self.activity)

    def drop(self, room_id: str) -> None:
        subscription = self.rooms.pop(room_id, None)
        if subscription is not None:
            self.state.broker.unsubscribe(subscription)

    def apply(self, type_: str, data: dict[str, Any]) -> None:
        room_id = str(data.get("room_id", ""))
        if type_ == "room.join":
            self.follow(room_id)
        elif type_ in ("room.leave", "room.delete"):
            self.drop(room_id)

    def close(self) -> None:
        for room_id in list(self.rooms):
            self.drop(room_id)


def activity_frame(event: LiveEvent) -> dict[str, str] | None:
    """A room's new message as the room list needs it: which room, which message, whose."""
    if event.type != "message.new":
        return None
    message = event.data.get("message", event.data)
    return sse(
        None,
        "room.message",
        {
            "room_id": event.room_id,
            "message_id": message.get("id"),
            "sender_user_id": message.get("sender_user_id"),
            "sender_agent_id": message.get("sender_agent_id"),
        },
    )


async def _stored_since(
    state: AppState, user_id: uuid.UUID, after_id: int
) -> AsyncIterator[tuple[int, str, dict[str, Any]]]:
    while True:
        async with state.sessionmaker() as session:
            batch = await UserEventRepository(session).after(user_id, after_id, REPLAY_BATCH)
        for row in batch:
            yield row
        if len(batch) < REPLAY_BATCH:
            return
        after_id = batch[-1][0]


async def user_stream(
    state: AppState, user_id: uuid.UUID, since: int | None, opened: OpenStream | None = None
) -> AsyncIterator[dict[str, Any]]:
    async with online(state.presence, user_id):
        async for frame in _user_frames(state, user_id, since, opened):
            yield frame


async def _user_frames(
    state: AppState, user_id: uuid.UUID, since: int | None, opened: OpenStream | None
) -> AsyncIterator[dict[str, Any]]:
    assert state.user_broker is not None
    own = state.user_broker.subscribe(str(user_id))
    if opened is not None:
        opened.wakeup = own.wakeup  # an ended credential wakes the stream up
    activity = Subscription("rooms", wakeup=own.wakeup)
    rooms = RoomFollower(state, activity)
    try:
        async with state.sessionmaker() as session:
            repository = UserEventRepository(session)
            if since is None:
                since = await repository.latest_id(user_id)
            for room_id in await repository.rooms_of(user_id):
                rooms.follow(str(room_id))
        last = since
        async for event_id, type_, data in _stored_since(state, user_id, last):
            rooms.apply(type_, data)
            yield sse(event_id, type_, data)
            last = event_id
        while True:
            if opened is not None and opened.ended:
                yield opened.final_frame()
                return
            await own.wakeup.wait()
            own.wakeup.clear()
            if opened is not None and opened.ended:
                continue
            if own.lagged.is_set():
                own.lagged.clear()
                async for event_id, type_, data in _stored_since(state, user_id, last):
                    rooms.apply(type_, data)
                    yield sse(event_id, type_, data)
                    last = event_id
            while not own.queue.empty():
                live = own.queue.get_nowait()
                if live.id is None or live.id <= last:
                    continue
                rooms.apply(live.type, live.data)
                yield sse(live.id, live.type, live.data)
                last = live.id
            if activity.lagged.is_set():
                activity.lagged.clear()
                yield sse(None, "rooms.resync", {})
            while not activity.queue.empty():
                frame = activity_frame(activity.queue.get_nowait())
                if frame is not None:
                    yield frame
    finally:
        rooms.close()
        state.user_broker.unsubscribe(own)
        if opened is not None:
            state.streams.close(opened)


@router.get("/api/events", response_class=EventStream, responses=STREAM_RESPONSES)
async def stream_my_events(
    request: Request,
    user: CurrentUser,
    state: StateDep,
    after: int | None = Query(default=None, ge=0, le=MAX_BIGINT),
    last_event_id: str | None = Header(default=None),
) -> EventStream:
    """Events: `room.join`, `room.leave`, `room.role`, `room.update`, `room.delete`, `mention`
    (each with an `id:`, replayed after Last-Event-ID), and live-only `room.message` (a new
    message in one of the caller's rooms, for unread counts) and `rooms.resync`."""
    since = resume_point(last_event_id, after)
    opened = open_stream(state, request, user)  # the per-person cap; ended with its credential
    return EventStream(
        user_stream(state, user.id, since, opened),
        ping=int(state.settings.sse_heartbeat_seconds) or 15,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
