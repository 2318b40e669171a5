"""Sliding-window counters in PostgreSQL, shared by every API replica.

Each bucket keeps one counter per fixed window; a request's usage is the current window's
count plus the previous window's count weighted by how much of it still overlaps the last
`window` seconds. A burst that straddles a window boundary is therefore still limited, which a
plain fixed window lets through at twice the limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

WINDOW_START_SQL = (
    "to_timestamp(floor(extract(epoch FROM now()) / CAST(:window AS integer))"
    " * CAST(:window AS integer))"
)
WINDOW_INTERVAL_SQL = "CAST(:window AS integer) * interval '1 second'"


# `hit` counts one request; `usage` weighs in the previous window.
_HIT = text(
    f"""
    WITH hit AS (
        INSERT INTO rate_limit_counters (bucket, window_start, hits)
        VALUES (:bucket, {WINDOW_START_SQL}, 1)
        ON CONFLICT (bucket, window_start) DO UPDATE SET hits = rate_limit_counters.hits + 1
        RETURNING hits, window_start
    ), usage AS (
        SELECT hit.hits, hit.window_start, COALESCE(prev.hits, 0) AS previous_hits,
               extract(epoch FROM now() - hit.window_start) AS elapsed,
               hit.hits + COALESCE(prev.hits, 0)
                   * (1 - extract(epoch FROM now() - hit.window_start) / CAST(:window AS integer))
                   AS used
        FROM hit LEFT JOIN rate_limit_counters prev
          ON prev.bucket = :bucket AND prev.window_start = hit.window_start - {WINDOW_INTERVAL_SQL}
    )
    SELECT hits, previous_hits, elapsed, used, window_start FROM usage
    """
)


@dataclass(frozen=True)
class WindowUsage:
    """One bucket's state after a hit: `hits` stored in the current window, `used` the
    sliding-window count the limit is checked against."""

    hits: int
    previous_hits: int
    elapsed_seconds: float
    used: float
    window_start: datetime


class RateLimitRepository:
    def __init__(self, connection: AsyncConnection | AsyncSession) -> None:
        self.connection = connection

    async def hit(self, bucket: str, window_seconds: int) -> WindowUsage:
        row = (
            await self.connection.execute(_HIT, {"bucket": bucket, "window": window_seconds})
        ).one()
        return WindowUsage(int(row[0]), int(row[1]), float(row[2]), float(row[3]), row[4])

    async def purge_before(self, cutoff: datetime) -> int:
        result = await self.connection.execute(
            text("DELETE FROM rate_limit_counters WHERE window_start < :cutoff"), {"cutoff": cutoff}
        )
        return int(result.rowcount)  # type: ignore[attr-defined]
