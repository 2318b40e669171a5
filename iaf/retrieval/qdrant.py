"""The Qdrant client: a server when QDRANT_URL is set, else local mode under the data dir.

Local mode runs inside this process and does its work synchronously, even through
AsyncQdrantClient: a 50,000-point delete (one SQLite commit per point) would stop the
worker's event loop for most of a minute, and with it every heartbeat and agent reply. So in
local mode the synchronous client runs on one thread of its own, behind the same async
method names; a Qdrant server is called with the real AsyncQdrantClient.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

from qdrant_client import AsyncQdrantClient, QdrantClient

from iaf.settings import Settings


class ThreadedLocalQdrant:
    """AsyncQdrantClient's methods, run by a synchronous local-mode client on one thread
    (local mode admits one opener per path, and its SQLite connection one thread)."""

    local = True

    def __init__(self, path: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qdrant-local")
        self._client: QdrantClient = self._executor.submit(QdrantClient, path=path).result()

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        method = getattr(self._client, name)
        if not callable(method):
            raise AttributeError(name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(
                self._executor, functools.partial(method, *args, **kwargs)
            )

        return call

    async def close(self, **kwargs: Any) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, functools.partial(self._client.close, **kwargs))
        self._executor.shutdown(wait=False)


def is_local(client: object) -> bool:
    return bool(getattr(client, "local", False))


def make_qdrant(settings: Settings) -> AsyncQdrantClient:
    """Server when qdrant_url is set, else local mode under data_dir (one process per path)."""
    if settings.qdrant_url:
        key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        return AsyncQdrantClient(url=settings.qdrant_url, api_key=key)
    settings.resolved_qdrant_path.mkdir(parents=True, exist_ok=True)
    # Same method names and arguments as AsyncQdrantClient (its async API mirrors the sync one).
    return cast(AsyncQdrantClient, ThreadedLocalQdrant(str(settings.resolved_qdrant_path)))
