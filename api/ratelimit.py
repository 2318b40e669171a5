"""Rate limits with 429, Retry-After and X-RateLimit-* headers (sliding window)."""

from __future__ import annotations

import dataclasses
import math
from datetime import timedelta

from fastapi import Response
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from iaf.db.repositories.ratelimit import RateLimitRepository, WindowUsage
from iaf.errors import ApiError

DAY_SECONDS = 24 * 3600


def per_address(bucket: str, address: str) -> str:
    """`kind:key` counted per client address too, as `kind@address:key`: what follows the
    first colon stays the key alone (an e-mail, an id), which GDPR erasure matches on to
    delete a person's counters (iaf/db/repositories/erasure.py)."""
    kind, _, key = bucket.partition(":")
    return f"{kind}@{address.replace(':', '_')}:{key}"


class RateLimiter:
    """Counts requests per bucket; raises 429 once the sliding window holds more than `limit`."""

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
            usage = await RateLimitRepository(session).hit(bucket, window_seconds)
        else:
            async with self.engine.begin() as connection:
                usage = await RateLimitRepository(connection).hit(bucket, window_seconds)
        if usage.used > limit and session is not None:
            await session.rollback()  # the refused request is not counted after all
            usage = dataclasses.replace(usage, hits=usage.hits - 1)
        enforce(usage, limit, window_seconds, response)


def seconds_until_allowed(usage: WindowUsage, limit: int, window: int) -> float:
    """When one more request fits on top of the `usage.hits` stored in the window: the
    previous window's weight decays linearly, and once the current window ends its count
    becomes the previous one."""
    if usage.hits < limit and usage.previous_hits > 0:
        fraction = 1 - (limit - usage.hits - 1) / usage.previous_hits
        return max(0.0, fraction * window - usage.elapsed_seconds)
    fraction = 1 - (limit - 1) / max(usage.hits, 1)
    return (window - usage.elapsed_seconds) + max(0.0, fraction) * window


def enforce(usage: WindowUsage, limit: int, window_seconds: int, response: Response | None) -> None:
    """Set X-RateLimit-* on the response, or raise 429 with Retry-After past the limit."""
    reset = usage.window_start + timedelta(seconds=window_seconds)
    headers = {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(max(0, math.floor(limit - usage.used))),
        "X-RateLimit-Reset": str(int(reset.timestamp())),
    }
    if usage.used > limit:
        seconds_left = max(1, math.ceil(seconds_until_allowed(usage, limit, window_seconds)))
        headers["Retry-After"] = str(seconds_left)
        raise ApiError(429, "rate_limited", f"too many requests; retry in {seconds_left}s", headers)
    if response is not None:
        response.headers.update(headers)
