"""A stack of real processes for the chaos suite, each of which a test may stop, kill or
stall: its own embedded PostgreSQL, a Temporal dev server on a SQLite file (its state survives
a kill), API processes (`iaf api`), worker processes (`iaf worker`) and an SMTP server that
can refuse mail. Nothing here is shared with the rest of the suite, so the faults stay here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
from pydantic import SecretStr

from iaf.db.migrate import upgrade
from iaf.devstack.postgres import EmbeddedPostgres
from iaf.devstack.temporal import TemporalDevServer, wait_for_port
from iaf.settings import Settings
from tests.conftest import FAST_PG, make_settings
from tests.helpers import free_port
from tests.smtp_capture import SmtpCapture

REPO = Path(__file__).resolve().parents[2]
# make test runs each scenario at scale 1; make soak sets IAF_CHAOS_SCALE higher.
SCALE = max(1, int(os.environ.get("IAF_CHAOS_SCALE", "1")))


def settings_env(settings: Settings) -> dict[str, str]:
    """The process environment that makes `iaf api` / `iaf worker` read these settings."""
    env = {k: v for k, v in os.environ.items() if k.split("_")[0] not in ("TEMPORAL", "QDRANT")}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, list | dict):
            value = json.dumps(value)
        env[name.upper()] = str(value)
    return env


class FlakySmtp(SmtpCapture):
    """A real SMTP server that, while `refusing`, answers every recipient with a temporary
    451 (the sender must retry later) and counts the refusals."""

    refusing = False
    refusals = 0

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if self.refusing:
            self.refusals += 1
            return "451 4.3.0 mailbox busy, try again later"
        return await super().handle_RCPT(server, session, envelope, address, options)


class ChaosStack:
    def __init__(self, root: Path, **overrides: Any) -> None:
        self.root = root
        self.pg = EmbeddedPostgres(root / "pg", free_port(), FAST_PG)
        self.temporal = TemporalDevServer(
            free_port(), None, db_file=root / "temporal.db", log_file=root / "temporal.log"
        )
        self.database_url = self.pg.url("iaf_chaos")
        self.settings = make_settings(
            root,
            self.database_url,
            self.temporal.address,
            qdrant_path=root / "qdrant",
            temporal_task_queue="chaos",
            temporal_retrieval_task_queue="chaos-retrieval",
            sweep_interval_seconds=1.0,
            sweep_min_age_seconds=1.0,
            reply_retry_initial_seconds=0.2,
            # Each SIGKILL costs the replies in flight one attempt; the suite kills 5 times. The
            # product's heartbeat (5 s), 3 attempts and 5 restarts after a lost worker carry
            # them through.
            # Each of the replies scenario's users has 5 x SCALE replies in flight at 50 each.
            starting_credits=1000 * SCALE,
            # The API-failover scenario's clients post 40 x SCALE lines each within seconds.
            posts_per_minute=60 * SCALE,
            public_base_url="http://127.0.0.1:1",
            temporal_start_timeout_seconds=1.0,  # the product's default, under the faults
            **overrides,
        )
        self.smtp = FlakySmtp(self.settings.smtp_port)
        self.processes: list[subprocess.Popen[bytes]] = []
        self.live_worker: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.pg.start()
        self.pg.ensure_database("iaf_chaos")
        upgrade(self.database_url)
        self.temporal.start()
        self.smtp.start()

    def stop(self) -> None:
        for process in self.processes:
            stop_process(process)
        self.smtp.stop()
        self.temporal.stop()
        self.pg.stop()

    def spawn(self, log_name: str, *command: str) -> subprocess.Popen[bytes]:
        with (self.root / f"{log_name}.log").open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "iaf.cli", *command],
                cwd=REPO,
                env=settings_env(self.settings),
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        self.processes.append(process)
        return process

    def worker(self, name: str = "worker") -> subprocess.Popen[bytes]:
        """A new worker; one at a time (Qdrant local mode admits one process)."""
        self.live_worker = self.spawn(name, "worker")
        return self.live_worker

    def ensure_worker(self) -> subprocess.Popen[bytes]:
        if self.live_worker is None or self.live_worker.poll() is not None:
            return self.worker(f"worker-{len(self.processes)}")
        return self.live_worker

    async def api(self, name: str = "api") -> tuple[subprocess.Popen[bytes], str]:
        """An `iaf api` process; returns it with its base URL once it answers /healthz."""
        port = free_port()
        process = self.spawn(name, "api", "--host", "127.0.0.1", "--port", str(port))
        url = f"http://127.0.0.1:{port}"
        await asyncio.to_thread(wait_for_port, "127.0.0.1", port, 180.0, process)
        return process, url

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.database_url) as conn:
            return list(conn.execute(sql, params).fetchall())  # type: ignore[arg-type]

    # --- faults -------------------------------------------------------------------------

    def postgres_processes(self) -> list[psutil.Process]:
        assert self.pg.process is not None
        postmaster = psutil.Process(self.pg.process.pid)
        return [postmaster, *postmaster.children(recursive=True)]

    @contextlib.contextmanager
    def postgres_stalled(self) -> Iterator[None]:
        """The postmaster and every backend stopped (SIGSTOP), as in a network partition:
        connections are accepted by the kernel and never answered."""
        stopped = self.postgres_processes()
        for process in stopped:
            process.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            for process in stopped:
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.send_signal(signal.SIGCONT)

    @contextlib.contextmanager
    def postgres_down(self) -> Iterator[None]:
        """PostgreSQL really stopped (fast shutdown), then started again on the same data."""
        self.pg.stop()
        try:
            yield
        finally:
            self.pg.start()

    @contextlib.contextmanager
    def temporal_stalled(self) -> Iterator[None]:
        assert self.temporal.process is not None
        server = psutil.Process(self.temporal.process.pid)
        server.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            server.send_signal(signal.SIGCONT)

    @contextlib.contextmanager
    def temporal_killed(self) -> Iterator[None]:
        """SIGKILL, then the same server started again on its SQLite file and port."""
        assert self.temporal.process is not None
        self.temporal.process.kill()
        self.temporal.process.wait()
        try:
            yield
        finally:
            self.temporal.start()


def kill(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        kill(process)


async def until(check: Any, within: float, what: str, every: float = 0.1) -> Any:
    """Poll `check()` (sync or async) until it returns something truthy."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(every)


async def until_complete(count: Any, target: int, stall: float, what: str) -> None:
    """Wait while `count()` climbs towards `target`; fail only when it stops climbing.

    A loaded machine may take long over many replies; a lost one stops the count for good.
    """
    best, moved = -1, time.monotonic()
    while True:
        now = count()
        if now >= target:
            return
        if now > best:
            best, moved = now, time.monotonic()
        if time.monotonic() - moved > stall:
            raise AssertionError(f"{what}: stuck at {best} of {target} for {stall:.0f} s")
        await asyncio.sleep(0.5)


async def healthy(url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            return (await http.get(f"{url}/healthz")).status_code == 200
    except httpx.HTTPError:
        return False
