"""Open SSE streams by person: a cap per person, and an end when their credentials end.

A stream outlives the request that authenticated it, so revoking a key, deactivating or
freezing an account or changing a password would leave it running. Every such change fires
a NOTIFY on the `credentials` channel (triggers on `users` and `api_keys`, ids only); each API
process LISTENs, re-authenticates the person's open streams with the credential each was
opened with, and ends those that no longer pass, with a last `stream.end` event. The same
end, with a retry hint, tells every client when the database becomes unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from iaf.errors import ApiError

log = logging.getLogger(__name__)

CREDENTIALS_CHANNEL = "credentials"


@dataclass(eq=False)
class OpenStream:
    """One SSE response being streamed; `ended` says why it must stop, once it must."""

    user_id: uuid.UUID
    token: str
    route: tuple[str, str]
    # The stream's own wake-up (its subscription's): set to make it notice the end now.
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    ended: str | None = None
    retry_ms: int | None = None

    def end(self, reason: str, retry_ms: int | None = None) -> None:
        if self.ended is None:
            self.ended = reason
            self.retry_ms = retry_ms
            self.wakeup.set()

    def final_frame(self) -> dict[str, Any]:
        """The last event a stream sends: why it ends, and when to reconnect if it may
        (`retry:` sets an EventSource's reconnection delay)."""
        data: dict[str, object] = {"reason": self.ended}
        frame: dict[str, Any] = {"event": "stream.end"}
        if self.retry_ms is not None:
            data["retry_after_ms"] = self.retry_ms
            frame["retry"] = self.retry_ms
        frame["data"] = json.dumps(data, separators=(",", ":"))
        return frame


# Re-authenticates a stream's credential; raises ApiError when it no longer holds.
Verify = Callable[[OpenStream], Awaitable[None]]


class StreamRegistry:
    def __init__(self) -> None:
        self.by_user: dict[uuid.UUID, set[OpenStream]] = {}

    def open(
        self, user_id: uuid.UUID, token: str, route: tuple[str, str], limit: int
    ) -> OpenStream:
        """Register a stream before its response starts: 429 past `limit` for this person."""
        streams = self.by_user.setdefault(user_id, set())
        if len(streams) >= limit:
            raise ApiError(
                429,
                "too_many_streams",
                f"at most {limit} open event streams per person; close one first",
                {"Retry-After": "5"},
            )
        stream = OpenStream(user_id, token, route)
        streams.add(stream)
        return stream

    def close(self, stream: OpenStream) -> None:
        streams = self.by_user.get(stream.user_id)
        if streams is not None:
            streams.discard(stream)
            if not streams:
                del self.by_user[stream.user_id]

    def count(self, user_id: uuid.UUID) -> int:
        return len(self.by_user.get(user_id, ()))

    def end_all(self, reason: str, retry_ms: int | None = None) -> int:
        ended = 0
        for streams in list(self.by_user.values()):
            for stream in list(streams):
                stream.end(reason, retry_ms)
                ended += 1
        return ended

    async def recheck(self, user_id: uuid.UUID | None, verify: Verify) -> int:
        """End the streams (of one person, or everyone's) whose credential no longer holds."""
        users = [user_id] if user_id is not None else list(self.by_user)
        ended = 0
        for user in users:
            for stream in list(self.by_user.get(user, ())):
                try:
                    await verify(stream)
                except ApiError as refusal:
                    if refusal.status in (401, 403):
                        stream.end("credentials_revoked")
                        ended += 1
        return ended


class CredentialWatch:
    """LISTENs on `credentials` and rechecks the named person's streams; after a lost
    connection, rechecks everyone's (a notice may have been missed meanwhile)."""

    def __init__(self, dsn: str, registry: StreamRegistry, verify: Verify) -> None:
        self.dsn = dsn
        self.registry = registry
        self.verify = verify
        self._task: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[int]] = set()
        self.connected = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen_forever(), name="credential-watch")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.connected.wait(), timeout=10)

    async def stop(self) -> None:
        for task in (self._task, *self._pending):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def _recheck(self, user_id: uuid.UUID | None) -> None:
        task = asyncio.create_task(self.registry.recheck(user_id, self.verify))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def _on_notify(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            user_id = uuid.UUID(str(json.loads(payload)["user_id"]))
        except (ValueError, KeyError, TypeError):
            return
        if self.registry.count(user_id):
            self._recheck(user_id)

    async def _listen_forever(self) -> None:
        delay = 0.2
        while True:
            connection: asyncpg.Connection | None = None
            try:
                connection = await asyncpg.connect(self.dsn, timeout=5)
                lost = asyncio.Event()
                connection.add_termination_listener(lambda _c, lost=lost: lost.set())
                await connection.add_listener(CREDENTIALS_CHANNEL, self._on_notify)
                self.connected.set()
                self._recheck(None)
                delay = 0.2
                await lost.wait()
            except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
                log.warning("credential watch disconnected: %s", type(exc).__name__)
            finally:
                self.connected.clear()
                if connection is not None and not connection.is_closed():
                    connection.terminate()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
