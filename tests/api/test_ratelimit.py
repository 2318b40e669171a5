"""The sliding-window limiter against the real PostgreSQL counters."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.ratelimit import RateLimiter, seconds_until_allowed
from iaf.db.engine import make_engine
from iaf.db.repositories.ratelimit import WindowUsage
from iaf.errors import ApiError

WINDOW = 60


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_url, 2)
    yield engine
    await engine.dispose()


async def _seconds_into_window(engine: AsyncEngine) -> float:
    async with engine.connect() as connection:
        elapsed = await connection.scalar(text("SELECT extract(epoch FROM now()) % 60"))
    return float(elapsed)


async def _seed_previous_window(engine: AsyncEngine, bucket: str, hits: int) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO rate_limit_counters (bucket, window_start, hits) VALUES (:b,"
                " to_timestamp(floor(extract(epoch FROM now()) / 60) * 60 - 60), :h)"
            ),
            {"b": bucket, "h": hits},
        )


async def test_a_burst_straddling_the_window_boundary_is_still_limited(engine):
    """A fixed window would let `limit` more requests through right after the boundary: the
    previous window is seeded with just enough hits that its remaining weight fills the limit."""
    bucket = f"test:{uuid.uuid4()}"
    limit = 10
    elapsed = await _seconds_into_window(engine)
    if elapsed > 50:
        await asyncio.sleep(61 - elapsed)
        elapsed = await _seconds_into_window(engine)
    weight = 1 - (elapsed + 5) / WINDOW  # 5 s of margin for the test's own run time
    await _seed_previous_window(engine, bucket, math.ceil(limit / weight))
    limiter = RateLimiter(engine)
    with pytest.raises(ApiError) as refused:
        await limiter.hit(bucket, limit, WINDOW)
    assert refused.value.status == 429
    assert int((refused.value.headers or {})["Retry-After"]) >= 1
    assert (refused.value.headers or {})["X-RateLimit-Remaining"] == "0"


async def test_requests_within_the_limit_pass_and_count_down(engine):
    bucket = f"test:{uuid.uuid4()}"
    limiter = RateLimiter(engine)
    for _ in range(3):
        await limiter.hit(bucket, 3, WINDOW)
    with pytest.raises(ApiError):
        await limiter.hit(bucket, 3, WINDOW)


def _usage(hits: int, previous: int, elapsed: float) -> WindowUsage:
    used = hits + previous * (1 - elapsed / WINDOW)
    return WindowUsage(hits, previous, elapsed, used, datetime.now(UTC))


def test_retry_after_waits_for_the_previous_window_to_decay():
    # 10 in the previous window, 5 now, 30 s into the window: used = 5 + 10 * 0.5 = 10.
    # One more fits once the previous window weighs 4: 1 - t/60 = 0.4, t = 36 s; 6 s from now.
    assert seconds_until_allowed(_usage(5, 10, 30.0), 10, WINDOW) == pytest.approx(6.0)


def test_retry_after_past_the_window_when_the_current_window_alone_is_full():
    # 11 now, 15 s in: the window ends in 45 s, then 11 * (1 - t/60) + 1 <= 10 at t = 60/11*1.
    wait = seconds_until_allowed(_usage(11, 0, 15.0), 10, WINDOW)
    assert wait == pytest.approx(45.0 + (1 - 9 / 11) * 60)
