"""Log lines: one JSON object per event with the ids it belongs to, and no content."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from iaf.observability.logs import REQUEST_ID, configure_logging
from iaf.settings import Settings

SECRET = "alice.private@example.com said: the launch code is 0000"


@pytest.fixture
def captured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """Our logging set up as a process would (stderr not a terminal), into a buffer."""
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    configure_logging(Settings(data_dir=tmp_path, log_file=tmp_path / "full.log"), "api")
    yield stream
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.handlers[:], root.level = saved
    logging.getLogger("iaf").setLevel(logging.NOTSET)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line]


def test_one_json_line_per_event_with_the_request_id(captured: io.StringIO) -> None:
    token = REQUEST_ID.set("req-12345678")
    try:
        logging.getLogger("iaf.test").info("room %s: %d members", "r-1", 3)
    finally:
        REQUEST_ID.reset(token)
    (line,) = lines(captured)
    assert line["msg"] == "room r-1: 3 members"
    assert (line["level"], line["process"], line["logger"]) == ("INFO", "api", "iaf.test")
    assert line["request_id"] == "req-12345678" and line["ts"].endswith("Z")


def test_a_traceback_names_classes_and_places_never_the_message(
    captured: io.StringIO, tmp_path: Path
) -> None:
    try:
        try:
            raise KeyError(SECRET)
        except KeyError as inner:
            raise ValueError(SECRET) from inner
    except ValueError:
        logging.getLogger("api.errors").exception("unhandled error")
    (line,) = lines(captured)
    assert line["error"].startswith("ValueError <- KeyError at ")
    assert "test_logs.py:" in line["error"]
    assert "example.com" not in captured.getvalue()
    assert "example.com" not in (tmp_path / "full.log").read_text()


def test_libraries_log_from_warning_and_our_own_from_info(captured: io.StringIO) -> None:
    for name in ("mail.log", "alembic.runtime.migration", "LiteLLM", "temporalio.worker._worker"):
        logging.getLogger(name).info("chatter")
    logging.getLogger("LiteLLM").warning("provider slow")
    logging.getLogger("workers.sweep").info("sweep started 2")
    got = [(line["logger"], line["msg"]) for line in lines(captured)]
    assert got == [("LiteLLM", "provider slow"), ("workers.sweep", "sweep started 2")]


def test_the_file_keeps_every_line_as_json(captured: io.StringIO, tmp_path: Path) -> None:
    logging.getLogger("api.access").info("GET /healthz 200 1.0 ms")
    (line,) = [json.loads(x) for x in (tmp_path / "full.log").read_text().splitlines()]
    assert line["msg"] == "GET /healthz 200 1.0 ms"


def test_the_dev_console_is_short_text_without_request_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    root = logging.getLogger()
    saved = list(root.handlers)
    try:
        configure_logging(Settings(data_dir=tmp_path, log_format="dev"), "worker")
        logging.getLogger("api.access").info("GET /healthz 200 1.0 ms")
        logging.getLogger("workers.main").warning("stopping: waiting for\nmore")
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        root.handlers[:] = saved
    (line,) = stream.getvalue().splitlines()
    assert line.endswith(" worker  WARNING stopping: waiting for")
