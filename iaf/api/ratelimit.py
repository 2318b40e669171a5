"""Rate limits with 429, Retry-After and X-RateLimit-* headers."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from fastapi import Response
from sqlalchemy.ext.asyncio import AsyncEngine

from iaf.api.errors import ApiError
from iaf.db.repositories.ratelimit import RateLimitRepository


class RateLimiter:
    """Each hit commits on its own, so failed attempts (a wrong password) still count."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def hit(
        self, bucket: str, limit: int, window_seconds: int, response: Response | None = None
    ) -> None:
        async with self.engine.begin() as connection:
            hits, window_start = await RateLimitRepository(connection).hit(bucket, window_seconds)
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
