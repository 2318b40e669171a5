"""`iaf dev`: the whole platform on one machine, every process stopped together on Ctrl-C.

The API and the worker run in sessions of their own, so a Ctrl-C reaches `iaf dev` alone,
which asks each of them once (SIGTERM) to stop, and stops PostgreSQL, Temporal and the SMTP
sink together once they have. The console shows one short line per event of every process;
`DATA_DIR/logs/<process>.log` keeps them all as JSON lines.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from rich.console import Console

from iaf.devstack.postgres import EmbeddedPostgres
from iaf.devstack.smtp_sink import start_smtp_sink
from iaf.devstack.temporal import TemporalDevServer, wait_for_port
from iaf.settings import Settings

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# A worker lets activities finish for worker_shutdown_grace_seconds; beyond this, it is killed.
CHILD_STOP_MARGIN_SECONDS = 5.0
console = Console()
log = logging.getLogger(__name__)


@dataclass
class DevStack:
    settings: Settings
    postgres: EmbeddedPostgres | None = None
    temporal: TemporalDevServer | None = None
    smtp: object | None = None
    children: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir.resolve()

    def start_services(self) -> None:
        (self.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        db = urlsplit(self.settings.database_url)
        if (db.hostname or "") in LOOPBACK:
            self.postgres = EmbeddedPostgres(self.data_dir / "postgres", db.port or 5432)
            self.postgres.start()
            self.postgres.ensure_database(db.path.lstrip("/") or "iaf")
            console.print(f"[green]✓[/] PostgreSQL    {self.settings.database_url}")
        host, _, port = self.settings.temporal_address.rpartition(":")
        if host in LOOPBACK:
            self.temporal = TemporalDevServer(
                int(port),
                self.settings.temporal_ui_port,
                self.data_dir / "temporal.sqlite",
                self.settings.temporal_namespace,
                self.data_dir / "logs" / "temporal.log",
            )
            self.temporal.start()
            console.print(f"[green]✓[/] Temporal      {self.settings.temporal_address}")
        if self.settings.smtp_host in LOOPBACK:
            self.smtp = start_smtp_sink(self.data_dir / "mail", self.settings.smtp_port)
            console.print(
                f"[green]✓[/] SMTP sink     {self.settings.smtp_host}:{self.settings.smtp_port}"
                f" → {self.data_dir / 'mail'}"
            )

    def migrate(self) -> None:
        from iaf.migrate import migrate_all

        asyncio.run(migrate_all(self.settings))
        console.print("[green]✓[/] Migrations applied")

    def spawn(self, *args: str, metrics_port: int | None = None) -> None:
        """A child in its own session: its log lines on our console (short) and in its file
        (JSON); anything it prints outside logging in logs/<name>.out."""
        logs = self.data_dir / "logs"
        env = {**os.environ, "LOG_FILE": str(logs / f"{args[0]}.log"), "LOG_FORMAT": "dev"}
        if metrics_port is not None:
            env["METRICS_PORT"] = str(metrics_port)
        with (logs / f"{args[0]}.out").open("ab") as out:
            self.children.append(
                subprocess.Popen(
                    [sys.executable, "-m", "iaf.cli", *args],
                    env=env,
                    stdout=out,
                    start_new_session=True,
                )
            )

    def rebuild_old_vectors(self) -> None:
        """A data dir from before Qdrant Edge holds qdrant-client local-mode files: rebuild
        the vectors from PostgreSQL once, before the worker opens the store."""
        from iaf.retrieval.rebuild import local_mode_data

        if self.settings.qdrant_url or not local_mode_data(self.settings.resolved_qdrant_path):
            return
        console.print("[yellow]…[/] Vectors      rebuilding from PostgreSQL (old local-mode data)")
        with (self.data_dir / "logs" / "reindex.log").open("ab") as log:
            subprocess.run(
                [sys.executable, "-m", "iaf.cli", "reindex"],
                env=os.environ.copy(),
                stdout=log,
                stderr=subprocess.STDOUT,
                check=True,
            )
        console.print("[green]✓[/] Vectors      rebuilt (see logs/reindex.log)")

    def start_app(self) -> None:
        self.rebuild_old_vectors()
        # With METRICS_PORT set, the API serves it and the worker the next port.
        port = self.settings.metrics_port
        self.spawn("worker", metrics_port=None if port is None else port + 1)
        self.spawn("api", metrics_port=port)
        wait_for_port(self.settings.api_host, self.settings.api_port, 120, self.children[-1])

    def print_urls(self, services_only: bool) -> None:
        console.rule("IAFactory Agents")
        if not services_only:
            console.print(f"Web client      {self.settings.public_base_url}/")
            console.print(f"API docs        {self.settings.public_base_url}/docs")
            console.print(f"Health          {self.settings.public_base_url}/healthz")
        if self.temporal is not None:
            console.print(f"Temporal UI     http://127.0.0.1:{self.settings.temporal_ui_port}")
        port, host = self.settings.metrics_port, self.settings.metrics_host
        if port is not None and not services_only:
            console.print(
                f"Metrics         http://{host}:{port}/metrics (API), port {port + 1} (worker)"
            )
        console.print(f"Data            {self.data_dir}   (logs in {self.data_dir / 'logs'})")
        if services_only:
            console.print("Now run [bold]iaf api[/] and [bold]iaf worker[/] in other terminals.")
        console.print("Ctrl-C stops everything.")

    def watch(self) -> None:
        while True:
            for child in self.children:
                if child.poll() is not None:
                    command = " ".join(str(a) for a in child.args[3:])  # type: ignore[index]
                    raise RuntimeError(f"`iaf {command}` exited with {child.returncode}; see logs")
            time.sleep(0.5)

    def stop(self) -> None:
        """The API and the worker first (they may still write), then the services at once."""
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        grace = self.settings.worker_shutdown_grace_seconds
        deadline = time.monotonic() + grace + CHILD_STOP_MARGIN_SECONDS
        for child in self.children:
            try:
                child.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                name = " ".join(str(a) for a in child.args[3:])  # type: ignore[index]
                log.warning("`iaf %s` did not stop in time: killed", name)
                child.kill()
                child.wait()
        stops = [
            service.stop  # type: ignore[attr-defined]
            for service in (self.smtp, self.temporal, self.postgres)
            if service is not None
        ]
        with ThreadPoolExecutor(max_workers=max(1, len(stops))) as pool:
            for done in [pool.submit(stop) for stop in stops]:
                done.result()


def run_dev(settings: Settings, services_only: bool) -> None:
    stack = DevStack(settings)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        stack.start_services()
        stack.migrate()
        if not services_only:
            stack.start_app()
        stack.print_urls(services_only)
        stack.watch()
    except KeyboardInterrupt:
        console.print("\nStopping…")
    finally:
        # A second Ctrl-C must not cut the stop short (and leave PostgreSQL running).
        signal.signal(signal.SIGINT, lambda *_: console.print("Still stopping…"))
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        started = time.monotonic()
        stack.stop()
        console.print(f"Stopped in {time.monotonic() - started:.1f} s.")
