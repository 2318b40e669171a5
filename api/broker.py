"""Fan-out of room events: one LISTEN connection per API process, one queue per SSE client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from iaf.observability.metrics import EVENTS_FANNED_OUT

log = logging.getLogger(__name__)

CHANNEL = "room_events"


@dataclass(frozen=True)
class LiveEvent:
    room_id: str
    id: int | None  # None for ephemeral events (typing, presence)
    type: str
    data: dict[str, Any]


@dataclass(eq=False)
class Subscription:
    room_id: str
    queue: asyncio.Queue[LiveEvent] = field(default_factory=lambda: asyncio.Queue(maxsize=2000))
    # Set when events may have been missed (slow client, lost LISTEN connection): the
    # stream then catches up from the database, which holds every stored event.
    lagged: asyncio.Event = field(default_factory=asyncio.Event)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, event: LiveEvent) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.mark_lagged()
        self.wakeup.set()

    def mark_lagged(self) -> None:
        while not self.queue.empty():
            self.queue.get_nowait()
        self.lagged.set()
        self.wakeup.set()


FetchEvent = Callable[[int], Awaitable[LiveEvent | None]]


class RoomEventBroker:
    """Listens on `channel`; each notice goes to the subscribers of its `key` (a room id, or a
    person's id for the user_events channel)."""

    def __init__(
        self, dsn: str, fetch_event: FetchEvent, channel: str = CHANNEL, key: str = "room_id"
    ) -> None:
        self.dsn = dsn
        self.fetch_event = fetch_event
        self.channel = channel
        self.key = key
        self.rooms: dict[str, set[Subscription]] = {}
        self._inbox: asyncio.Queue[str] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self.connected = asyncio.Event()

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._listen_forever(), name="broker-listen"),
            asyncio.create_task(self._dispatch_forever(), name="broker-dispatch"),
        ]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.connected.wait(), timeout=10)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def subscribe(self, room_id: str, into: Subscription | None = None) -> Subscription:
        """`into`: deliver to that subscription's queue too (one reader for many rooms)."""
        subscription = Subscription(room_id)
        if into is not None:
            subscription = Subscription(room_id, into.queue, into.lagged, into.wakeup)
        self.rooms.setdefault(room_id, set()).add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscribers = self.rooms.get(subscription.room_id)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self.rooms[subscription.room_id]

    async def _listen_forever(self) -> None:
        delay = 0.2
        while True:
            connection: asyncpg.Connection | None = None
            try:
                connection = await asyncpg.connect(self.dsn)
                lost = asyncio.Event()
                connection.add_termination_listener(lambda _c, lost=lost: lost.set())
                await connection.add_listener(self.channel, self._on_notify)
                self.connected.set()
                self._resync_all()  # anything sent while we were away is in the table
                delay = 0.2
                await lost.wait()
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("room event listener disconnected: %s", exc)
            finally:
                self.connected.clear()
                if connection is not None and not connection.is_closed():
                    connection.terminate()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    def _on_notify(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        self._inbox.put_nowait(payload)

    async def _dispatch_forever(self) -> None:
        while True:
            payload = await self._inbox.get()
            try:
                await self._dispatch(json.loads(payload))
            except Exception:
                log.exception("could not dispatch room event")

    async def _dispatch(self, message: dict[str, Any]) -> None:
        room_id = str(message[self.key])
        subscribers = self.rooms.get(room_id)
        if not subscribers:
            return
        event: LiveEvent | None
        if "data" in message:
            event = LiveEvent(room_id, message.get("id"), message["type"], message["data"] or {})
        else:
            event = await self.fetch_event(int(message["id"]))
        if event is None:
            return
        for subscription in list(subscribers):
            subscription.offer(event)
        EVENTS_FANNED_OUT.labels(event.type).inc(len(subscribers))

    def _resync_all(self) -> None:
        for subscribers in self.rooms.values():
            for subscription in subscribers:
                subscription.mark_lagged()
