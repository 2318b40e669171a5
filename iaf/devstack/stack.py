"""`iaf dev`: the whole platform on one machine, every process stopped together on Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from rich.console import Console

from iaf.devstack.postgres import EmbeddedPostgres
from iaf.devstack.smtp_sink import start_smtp_sink
from iaf.devstack.temporal import TemporalDevServer, wait_for_port
from iaf.settings import Settings

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
console = Console()


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

    def spawn(self, *args: str) -> None:
        log = (self.data_dir / "logs" / f"{args[0]}.log").open("ab")
        command = [sys.executable, "-m", "iaf.cli", *args]
        self.children.append(
            subprocess.Popen(command, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT)
        )

    def start_app(self) -> None:
        self.spawn("worker")
        self.spawn("api")
        wait_for_port(self.settings.api_host, self.settings.api_port, 120, self.children[-1])

    def print_urls(self, services_only: bool) -> None:
        console.rule("IAFactory Agents")
        if not services_only:
            console.print(f"Web client      {self.settings.public_base_url}/")
            console.print(f"API docs        {self.settings.public_base_url}/docs")
            console.print(f"Health          {self.settings.public_base_url}/healthz")
        if self.temporal is not None:
            console.print(f"Temporal UI     http://127.0.0.1:{self.settings.temporal_ui_port}")
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
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signal.SIGINT)
        for child in self.children:
            try:
                child.wait(20)
            except subprocess.TimeoutExpired:
                child.kill()
        if self.smtp is not None:
            self.smtp.stop()  # type: ignore[attr-defined]
        if self.temporal is not None:
            self.temporal.stop()
        if self.postgres is not None:
            self.postgres.stop()


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
        stack.stop()
        console.print("Stopped.")
