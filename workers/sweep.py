"""Starts RouteMessage for messages stored while Temporal was unreachable (rule 5).

Each round looks at up to `sweep_batch_size` messages still waiting (routed_at NULL and older
than `sweep_min_age_seconds`): the newest half, so a new message never waits behind old ones
that cannot be routed, and the next half of a cursor that walks the whole backlog round after
round, so old ones are not starved either. For each, with at most `sweep_concurrency` calls
in flight:

- no run yet, or the last one failed, timed out or was terminated: RouteMessage starts (its
  ID reuse policy is ALLOW_DUPLICATE_FAILED_ONLY);
- the run completed: the message is marked routed, so it is not looked at again;
- the run is still going: it is left alone for a while (it marks the message itself).

When Temporal turns out to be unreachable, the rest of the round is left for the next one.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowExecutionStatus

from iaf.db.repositories.messages import MessageRepository
from iaf.db.repositories.ratelimit import RateLimitRepository
from iaf.db.repositories.sweep import UnroutedRepository
from iaf.settings import Settings
from iaf.temporal_client import is_outage
from iaf.workflow_calls import route_status, start_route_message

log = logging.getLogger(__name__)


@dataclass
class SweepRound:
    started: int = 0
    already_started: int = 0  # a run exists: marked_routed + running + closing
    marked_routed: int = 0
    running: int = 0
    deferred: int = 0  # not tried: Temporal was unreachable this round
    errors: int = 0
    looked_at: list[int] = field(default_factory=list)


class UnroutedSweep:
    """One per worker process; keeps the backlog cursor between rounds."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        temporal: Client,
        settings: Settings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.temporal = temporal
        self.settings = settings
        self.clock = clock
        self.cursor = 0
        # Messages whose RouteMessage is running: not asked about again before this time.
        self.recheck_at: dict[int, float] = {}

    @property
    def running_recheck_seconds(self) -> float:
        return self.settings.sweep_interval_seconds * 6

    async def candidates(self) -> list[int]:
        settings = self.settings
        age = settings.sweep_min_age_seconds
        half = max(1, settings.sweep_batch_size // 2)
        async with self.sessionmaker() as session:
            unrouted = UnroutedRepository(session)
            newest = await unrouted.newest(age, half)
            backlog = await unrouted.after(age, self.cursor, half)
        self.cursor = backlog[-1] if len(backlog) == half else 0
        now = self.clock()
        self.recheck_at = {m: t for m, t in self.recheck_at.items() if t > now}
        return [m for m in dict.fromkeys([*newest, *backlog]) if m not in self.recheck_at]

    async def run_once(self) -> SweepRound:
        result = SweepRound()
        ids = await self.candidates()
        if not ids:
            return result
        result.looked_at = ids
        async with self.sessionmaker() as session:
            keys = await MessageRepository(session).routing_keys(ids)
        gate = asyncio.Semaphore(max(1, self.settings.sweep_concurrency))
        outage = asyncio.Event()
        completed: list[int] = []

        async def one(message_id: int) -> None:
            if message_id not in keys:
                return  # deleted since
            async with gate:
                if outage.is_set():
                    result.deferred += 1
                    return
                try:
                    await self._route(message_id, keys[message_id], result, completed)
                except Exception as exc:
                    if is_outage(exc) or isinstance(exc, TimeoutError):
                        outage.set()
                        result.deferred += 1
                    else:
                        result.errors += 1
                        log.warning(
                            "sweep: message %s not routed (%s)", message_id, type(exc).__name__
                        )

        await asyncio.gather(*(one(m) for m in ids))
        if completed:
            async with self.sessionmaker() as session:
                messages = MessageRepository(session)
                for message_id in completed:
                    await messages.mark_routed(message_id, {})
                await session.commit()
            result.marked_routed = len(completed)
        return result

    async def _route(
        self,
        message_id: int,
        key: tuple[str, uuid.UUID | None],
        result: SweepRound,
        completed: list[int],
    ) -> None:
        room_id, sender_id = key
        if await start_route_message(self.temporal, self.settings, message_id, room_id, sender_id):
            result.started += 1
            return
        result.already_started += 1
        async with asyncio.timeout(max(1.0, self.settings.temporal_start_timeout_seconds)):
            status = await route_status(self.temporal, message_id)
        if status == WorkflowExecutionStatus.COMPLETED:
            completed.append(message_id)
        elif status == WorkflowExecutionStatus.RUNNING:
            result.running += 1
            self.recheck_at[message_id] = self.clock() + self.running_recheck_seconds
        # Anything else closed just now: the next round starts it again.


async def purge_rate_limits(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await RateLimitRepository(connection).purge_before(datetime.now(UTC) - timedelta(hours=3))


async def sweep_forever(
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    temporal: Client,
    settings: Settings,
) -> None:
    sweep = UnroutedSweep(sessionmaker, temporal, settings)
    rounds = 0
    while True:
        try:
            result = await sweep.run_once()
            if result.started or result.marked_routed:
                log.info(
                    "sweep started RouteMessage for %d stored messages, marked %d routed",
                    result.started,
                    result.marked_routed,
                )
            if result.deferred:
                log.info("sweep: Temporal unreachable, %d messages wait", result.deferred)
            rounds += 1
            if rounds % 360 == 1:
                await purge_rate_limits(engine)
        except Exception as exc:
            log.warning("sweep round failed (%s); retrying next round", type(exc).__name__)
        await asyncio.sleep(settings.sweep_interval_seconds)
