"""Who has a live stream on this API process, kept in PostgreSQL as leases (user_presence).

A person is online while any process holds an unexpired lease for them. The first stream a
person opens here writes the lease at once; a background task renews every lease this process
holds each `presence_renew_seconds` (to now + `presence_lease_seconds`); their last stream here
closing deletes this process's lease at once. A process that dies stops renewing, so its
leases run out within `presence_lease_seconds`. Notifications read the leases to tell who is
offline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from iaf.db.repositories.presence import PresenceRepository
from iaf.settings import Settings

log = logging.getLogger(__name__)


class PresenceTracker:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.process_id = uuid.uuid4()
        self.streams: Counter[uuid.UUID] = Counter()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._renew_forever(), name="presence-leases")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await self._write(lambda repo: repo.drop_process(self.process_id))

    @contextlib.asynccontextmanager
    async def streaming(self, user_id: uuid.UUID) -> AsyncIterator[None]:
        """Around one SSE stream of `user_id`."""
        self.streams[user_id] += 1
        if self.streams[user_id] == 1:
            await self._renew([user_id])
        try:
            yield
        finally:
            self.streams[user_id] -= 1
            if self.streams[user_id] <= 0:
                del self.streams[user_id]
                with contextlib.suppress(Exception):
                    await asyncio.shield(
                        self._write(lambda repo: repo.leave(self.process_id, user_id))
                    )

    async def _renew(self, user_ids: list[uuid.UUID]) -> None:
        lease = self.settings.presence_lease_seconds
        await self._write(lambda repo: repo.renew(self.process_id, user_ids, lease))

    async def _write(self, step: Callable[[PresenceRepository], Awaitable[None]]) -> None:
        async with self.sessionmaker() as session:
            await step(PresenceRepository(session))
            await session.commit()

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.presence_renew_seconds)
            if not self.streams:
                continue
            try:
                await self._renew(list(self.streams))
            except Exception as exc:  # the next round tries again; leases outlive one miss
                log.warning("presence leases not renewed (%s)", type(exc).__name__)


@contextlib.asynccontextmanager
async def online(tracker: PresenceTracker | None, user_id: uuid.UUID) -> AsyncIterator[None]:
    """Around an SSE stream: while it is open, its person is online (not e-mailed)."""
    if tracker is None:
        yield
        return
    async with tracker.streaming(user_id):
        yield
