"""Starts RouteMessage for messages stored while Temporal was unreachable (rule 5)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client

from iaf.db.repositories.chat import MessageRepository
from iaf.db.repositories.ratelimit import RateLimitRepository
from iaf.schemas.workflows import SweepResult
from iaf.settings import Settings
from iaf.temporal_client import start_route_message

log = logging.getLogger(__name__)


async def sweep_unrouted_once(
    sessionmaker: async_sessionmaker[AsyncSession], temporal: Client, settings: Settings
) -> SweepResult:
    async with sessionmaker() as session:
        ids = await MessageRepository(session).unrouted_ids(settings.sweep_min_age_seconds, 500)
        keys = await MessageRepository(session).routing_keys(ids)
    started = already = 0
    for message_id in ids:
        room_id, sender_id = keys[message_id]
        if await start_route_message(temporal, settings, message_id, room_id, sender_id):
            started += 1
        else:
            already += 1
    return SweepResult(started=started, already_started=already)


async def purge_rate_limits(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await RateLimitRepository(connection).purge_before(datetime.now(UTC) - timedelta(hours=3))


async def sweep_forever(
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    temporal: Client,
    settings: Settings,
) -> None:
    rounds = 0
    while True:
        try:
            result = await sweep_unrouted_once(sessionmaker, temporal, settings)
            if result.started:
                log.info("sweep started RouteMessage for %d stored messages", result.started)
            rounds += 1
            if rounds % 360 == 1:
                await purge_rate_limits(engine)
        except Exception as exc:
            log.warning("sweep round failed (%s); retrying next round", exc)
        await asyncio.sleep(settings.sweep_interval_seconds)
