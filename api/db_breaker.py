"""A circuit breaker on PostgreSQL: while it is unreachable, answer 503 at once.

A stalled server (a network partition, a stopped host) accepts packets and answers nothing:
without a bound, every request waits on its connection and they pile up. A probe on a
connection of its own runs `SELECT 1` every `probe_interval` seconds with a short timeout;
two failures in a row (one may be a busy machine) open the breaker. While it is open, API
requests get 503 with Retry-After without touching the pool, requests already waiting are
answered 503 too (their work is abandoned, not acknowledged: a retried post with the same
client_msg_id is stored once), and open SSE streams end with a retry hint so that clients
come back with Last-Event-ID. The first probe that succeeds closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response

log = logging.getLogger(__name__)

FAILURES_TO_OPEN = 2


class DatabaseBreaker:
    def __init__(
        self,
        dsn: str,
        probe_interval: float,
        probe_timeout: float,
        retry_after_seconds: int,
        on_open: Callable[[], None] = lambda: None,
    ) -> None:
        self.dsn = dsn
        self.probe_interval = probe_interval
        self.probe_timeout = probe_timeout
        self.retry_after_seconds = retry_after_seconds
        self.on_open = on_open
        self.opened = asyncio.Event()
        self.failures = 0
        self.times_opened = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def is_open(self) -> bool:
        return self.opened.is_set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._probe_forever(), name="database-breaker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def trip(self) -> None:
        """Open now (a request met a connection error, or the probe failed twice)."""
        if self.is_open:
            return
        self.times_opened += 1
        self.opened.set()
        log.warning("PostgreSQL unreachable: answering 503 until a probe succeeds")
        self.on_open()

    def _reset(self) -> None:
        self.failures = 0
        if self.is_open:
            log.warning("PostgreSQL reachable again")
            self.opened.clear()

    async def _probe_forever(self) -> None:
        connection: asyncpg.Connection | None = None
        while True:
            try:
                async with asyncio.timeout(self.probe_timeout):
                    if connection is None or connection.is_closed():
                        connection = await asyncpg.connect(self.dsn)
                    await connection.fetchval("SELECT 1")
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                if connection is not None:
                    connection.terminate()  # no goodbye: the server may not answer one
                    connection = None
                self.failures += 1
                if self.failures >= FAILURES_TO_OPEN:
                    self.trip()
                    await asyncio.sleep(self.probe_interval)
                continue  # the second probe follows at once: an outage opens quickly
            self._reset()
            await asyncio.sleep(self.probe_interval)


def needs_database(path: str) -> bool:
    return path.startswith(("/api/", "/v1/"))


class DatabaseAvailability:
    """ASGI middleware: 503 + Retry-After while the breaker is open, and for requests the
    breaker opens under before they have started their response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def _breaker(self, scope: Scope) -> DatabaseBreaker | None:
        state = getattr(scope["app"].state, "iaf", None) if "app" in scope else None
        return getattr(state, "breaker", None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        breaker = self._breaker(scope) if scope["type"] == "http" else None
        if breaker is None or not needs_database(scope["path"]):
            await self.app(scope, receive, send)
            return
        if breaker.is_open:
            await self._unavailable(breaker, scope, receive, send)
            return
        started = False
        abandoned = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if abandoned:
                return
            started = True
            await send(message)

        request = asyncio.ensure_future(self.app(scope, receive, guarded_send))
        opened = asyncio.ensure_future(breaker.opened.wait())
        try:
            await asyncio.wait({request, opened}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            opened.cancel()
        if request.done() or started:
            await request  # a started response (a stream) ends on its own
            return
        abandoned = True
        request.cancel()  # its cleanup may wait on the stalled server: not awaited here
        request.add_done_callback(_log_abandoned)
        await self._unavailable(breaker, scope, receive, send)

    async def _unavailable(
        self, breaker: DatabaseBreaker, scope: Scope, receive: Receive, send: Send
    ) -> None:
        response = error_response(
            503,
            "database_unavailable",
            "the database is unreachable; retry shortly",
            {"Retry-After": str(breaker.retry_after_seconds)},
        )
        await response(scope, receive, send)


def _log_abandoned(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.info("a request abandoned during a database outage ended with %r", task.exception())
