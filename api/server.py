"""`iaf api`: the app under uvicorn, logging through ours, saying what a stop waits for."""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
from collections.abc import Iterator

import uvicorn

from api.main import create_app
from api.telemetry import open_streams
from iaf.settings import Settings

log = logging.getLogger(__name__)
# SSE streams end at once on shutdown (sse-starlette); other requests get this long.
GRACEFUL_SHUTDOWN_SECONDS = 3


class ApiServer(uvicorn.Server):
    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            log.info("API on http://%s:%d", self.config.host, self.config.port)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """uvicorn's, except that it does not raise the signal again once stopped: a stop
        that was asked for ends with status 0, after our own clean-up."""
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        busy = len(self.server_state.tasks)
        if busy:
            log.warning(
                "stopping: %d requests in flight (%d of them event streams, closed now); waiting"
                " up to %d s for the others",
                busy,
                open_streams(),
                GRACEFUL_SHUTDOWN_SECONDS,
            )
        else:
            log.info("stopping: nothing in flight")
        await super().shutdown(sockets)
        log.info("API stopped")


def serve(settings: Settings, host: str, port: int) -> None:
    config = uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        log_config=None,  # uvicorn's loggers go through ours (third-party: WARNING)
        log_level="warning",
        access_log=False,  # api.access logs each request with its route template instead
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    ApiServer(config).run()
