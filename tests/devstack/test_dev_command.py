"""`iaf dev` (what `make run` starts): API and Temporal UI up, clean stop, data kept."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx

from tests.helpers import free_port, unique_email


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait_healthy(base: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            response = httpx.get(f"{base}/healthz", timeout=5)
            last = response.json()
            if response.status_code == 200 and last["status"] == "ok":
                return dict(last)
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"platform never became healthy: {last}")


def _start(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "iaf.cli", "dev"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _stop(process: subprocess.Popen[bytes]) -> str:
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=90)
    return out.decode(errors="replace")


def test_dev_stack_serves_api_and_temporal_ui_then_stops_and_keeps_data(tmp_path):
    ports = {name: free_port() for name in ("api", "pg", "temporal", "ui", "smtp")}
    base = f"http://127.0.0.1:{ports['api']}"
    env = {
        **os.environ,
        "DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{ports['pg']}/iaf",
        "TEMPORAL_ADDRESS": f"127.0.0.1:{ports['temporal']}",
        "TEMPORAL_UI_PORT": str(ports["ui"]),
        "SMTP_PORT": str(ports["smtp"]),
        "API_PORT": str(ports["api"]),
        "PUBLIC_BASE_URL": base,
    }
    email = unique_email("dev")
    process = _start(env)
    try:
        health = _wait_healthy(base)
        assert set(health["checks"]) == {"postgres", "temporal", "qdrant", "smtp"}
        ui = httpx.get(f"http://127.0.0.1:{ports['ui']}/", timeout=10)
        assert ui.status_code == 200 and "<html" in ui.text.lower()
        page = httpx.get(f"{base}/", timeout=10)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        signup = httpx.post(
            f"{base}/api/auth/signup",
            json={"email": email, "password": "long enough pw", "name": "Dev"},
        )
        assert signup.status_code == 201
    finally:
        output = _stop(process)
    assert process.returncode == 0, output
    assert "Temporal UI" in output and "Stopped." in output
    assert not any(_port_open(p) for p in ports.values()), "Ctrl-C stopped every process"

    process = _start(env)
    try:
        _wait_healthy(base)
        login = httpx.post(
            f"{base}/api/auth/login", json={"email": email, "password": "long enough pw"}
        )
        assert login.status_code == 200, "a second run keeps the data"
    finally:
        _stop(process)


def test_services_only_then_api_and_worker_in_other_terminals_with_no_flags(tmp_path):
    """`iaf dev --services-only`, then `iaf api` and `iaf worker` with no flags: the three
    share one environment (as a `.env` would give them) and the working directory, whose
    `.iaf/` holds the data and the generated secrets; an agent answers."""
    ports = {name: free_port() for name in ("api", "pg", "temporal", "ui", "smtp")}
    base = f"http://127.0.0.1:{ports['api']}"
    env = {
        **{k: v for k, v in os.environ.items() if k != "DATA_DIR"},
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{ports['pg']}/iaf",
        "TEMPORAL_ADDRESS": f"127.0.0.1:{ports['temporal']}",
        "TEMPORAL_UI_PORT": str(ports["ui"]),
        "SMTP_PORT": str(ports["smtp"]),
        "API_PORT": str(ports["api"]),
        "PUBLIC_BASE_URL": base,
    }

    def run(*command: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "iaf.cli", *command],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

    services = run("dev", "--services-only")
    processes = [services]
    try:
        deadline = time.monotonic() + 120
        while not (_port_open(ports["pg"]) and _port_open(ports["temporal"])):
            assert services.poll() is None and time.monotonic() < deadline
            time.sleep(0.5)
        processes += [run("api"), run("worker")]
        _wait_healthy(base)
        alice = httpx.post(
            f"{base}/api/auth/signup",
            json={"email": unique_email("sep"), "password": "long enough pw", "name": "Sep"},
        ).json()
        headers = {"Authorization": f"Bearer {alice['access_token']}"}
        room = httpx.post(f"{base}/api/chat/rooms", json={"name": "r"}, headers=headers).json()
        messages = f"{base}/api/chat/rooms/{room['id']}/messages"
        posted = httpx.post(messages, json={"content": "@architect hello"}, headers=headers)
        assert posted.status_code == 201
        for _ in range(240):
            items = httpx.get(messages, headers=headers).json()["items"]
            if any(m["sender_agent_id"] == "architect" for m in items):
                break
            time.sleep(0.5)
        else:
            raise AssertionError("no agent reply through the separately started worker")
        assert (tmp_path / ".iaf" / "secrets").is_dir(), "secrets shared through ./.iaf"
    finally:
        for process in reversed(processes):
            _stop(process)
    assert all(p.returncode == 0 for p in processes[:1])
    assert not any(_port_open(p) for p in ports.values())
