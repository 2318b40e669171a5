"""Fixed-window counters in PostgreSQL, shared by every API replica."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

_HIT = text(
    """
    INSERT INTO rate_limit_counters (bucket, window_start, hits)
    VALUES (:bucket, to_timestamp(floor(extract(epoch FROM now()) / :window) * :window), 1)
    ON CONFLICT (bucket, window_start) DO UPDATE SET hits = rate_limit_counters.hits + 1
    RETURNING hits, window_start
    """
)


class RateLimitRepository:
    def __init__(self, connection: AsyncConnection | AsyncSession) -> None:
        self.connection = connection

    async def hit(self, bucket: str, window_seconds: int) -> tuple[int, datetime]:
        row = (
            await self.connection.execute(_HIT, {"bucket": bucket, "window": window_seconds})
        ).one()
        return int(row[0]), row[1]

    async def purge_before(self, cutoff: datetime) -> int:
        result = await self.connection.execute(
            text("DELETE FROM rate_limit_counters WHERE window_start < :cutoff"), {"cutoff": cutoff}
        )
        return int(result.rowcount)  # type: ignore[attr-defined]
