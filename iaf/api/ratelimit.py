"""Rate limits with 429, Retry-After and X-RateLimit-* headers."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from fastapi import Response
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from iaf.api.errors import ApiError
from iaf.db.repositories.ratelimit import RateLimitRepository


class RateLimiter:
    """Counts requests per bucket and window; raises 429 past the limit."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def hit(
        self,
        bucket: str,
        limit: int,
        window_seconds: int,
        response: Response | None = None,
        session: AsyncSession | None = None,
    ) -> None:
        """Without a session the hit commits on its own, so failed attempts (a wrong password)
        count; call that form only before the request's session holds a connection, or two
        checkouts per request can exhaust the pool. With a session it joins its transaction."""
        if session is not None:
            hits, window_start = await RateLimitRepository(session).hit(bucket, window_seconds)
        else:
            async with self.engine.begin() as connection:
                hits, window_start = await RateLimitRepository(connection).hit(
                    bucket, window_seconds
                )
        if hits > limit and session is not None:
            await session.rollback()
        enforce(hits, window_start, limit, window_seconds, response)


def enforce(
    hits: int, window_start: datetime, limit: int, window_seconds: int, response: Response | None
) -> None:
    """Set X-RateLimit-* on the response, or raise 429 with Retry-After past the limit."""
    reset = window_start + timedelta(seconds=window_seconds)
    seconds_left = max(1, math.ceil((reset - datetime.now(UTC)).total_seconds()))
    headers = {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(max(0, limit - hits)),
        "X-RateLimit-Reset": str(int(reset.timestamp())),
    }
    if hits > limit:
        headers["Retry-After"] = str(seconds_left)
        raise ApiError(429, "rate_limited", f"too many requests; retry in {seconds_left}s", headers)
    if response is not None:
        response.headers.update(headers)
