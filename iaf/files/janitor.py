"""The worker's file janitor: bytes of withdrawn or abandoned attachments, and their rows.

A loop rather than a workflow per file: the state is the rows' status in PostgreSQL, each
round is idempotent (bytes first, then the row), and a failure is simply the next round's
work; deleting a message or discarding an upload already removes its bytes at once, this
catches what that could not (the store was down, the API stopped) and what nobody asks to
delete (uploads never posted, files of deleted rooms).
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from iaf.files.service import remove_abandoned
from iaf.files.store import file_store
from iaf.settings import Settings

log = logging.getLogger(__name__)


async def remove_abandoned_files_forever(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    store = file_store(settings)
    while True:
        await asyncio.sleep(settings.sweep_interval_seconds)
        try:
            async with sessionmaker() as session:
                removed = await remove_abandoned(session, store, settings)
            if removed:
                log.info("file janitor removed %d attachments", removed)
        except Exception as exc:
            log.warning("file janitor round failed (%s); retrying next round", type(exc).__name__)
