"""Session-wide real services: embedded PostgreSQL, a Temporal dev server, a worker, the API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from iaf.db.migrate import upgrade
from iaf.devstack.postgres import EmbeddedPostgres
from iaf.devstack.temporal import TemporalDevServer
from iaf.settings import Settings
from tests.helpers import free_port, serve_api
from tests.smtp_capture import SmtpCapture
from workers.main import running_worker

FAST_PG = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("iaf-data")


@pytest.fixture(scope="session")
def postgres(data_dir: Path) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(data_dir / "postgres", free_port(), FAST_PG)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def database_url(postgres: EmbeddedPostgres) -> str:
    postgres.ensure_database("iaf_test")
    url = postgres.url("iaf_test")
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def temporal_server(data_dir: Path) -> Iterator[TemporalDevServer]:
    server = TemporalDevServer(free_port(), None, log_file=data_dir / "temporal.log")
    server.start()
    yield server
    server.stop()


def make_settings(
    data_dir: Path, database_url: str, temporal_address: str, **overrides: object
) -> Settings:
    values: dict[str, object] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "temporal_address": temporal_address,
        "temporal_task_queue": "iaf-test",
        "temporal_retrieval_task_queue": "iaf-test-retrieval",
        "smtp_port": free_port(),
        "jwt_secret": "test-secret-not-for-production-0123456789",
        "pseudonym_secret": "test-pseudonym-secret-0123456789",
        "sweep_interval_seconds": 0.5,
        "sweep_min_age_seconds": 0.5,
        "sse_heartbeat_seconds": 5,
        "auth_requests_per_ip_per_minute": 100_000,
        # A busy machine can take longer than the 1 s default to start a workflow, and two
        # slow starts open the guard (starts refused for 5 s): tests that are not about
        # the guard must not depend on the machine being idle. Those that are set it.
        "temporal_start_timeout_seconds": 10.0,
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def settings(data_dir: Path, database_url: str, temporal_server: TemporalDevServer) -> Settings:
    return make_settings(data_dir, database_url, temporal_server.address)


@pytest.fixture(scope="session")
async def worker(settings: Settings) -> AsyncIterator[object]:
    async with running_worker(settings) as clients:
        yield clients


@pytest.fixture(scope="session")
async def api_url(settings: Settings, worker: object) -> AsyncIterator[str]:
    async with serve_api(settings) as url:
        yield url


@pytest.fixture(scope="module")
def smtp(settings: Settings) -> Iterator[SmtpCapture]:
    """A real SMTP server (aiosmtpd) on the settings' port, keeping what it receives."""
    capture = SmtpCapture(settings.smtp_port)
    capture.start()
    yield capture
    capture.stop()


@pytest.fixture
async def client(api_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as http:
        yield http


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A skipped test hides a missing part: count it as a failure."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if skipped and exitstatus == 0:
        session.exitstatus = 1
