"""One line per event: JSON for machines, a short text line for a terminal; ids, never content.

A line carries what identifies the work it belongs to, when known: the HTTP request id, and
the workflow id, run id and activity of the Temporal task that logged it. Nothing else from
the request or the workflow: message text, e-mail addresses and names stay in PostgreSQL
(DESIGN rule 2 applies to logs as well). Exception messages often quote data (SQL
parameters, a violated key's value, an SMTP recipient), so a traceback is logged as its
exception classes and code locations only.

The project's own loggers log from `log_level` (INFO); every library from
`third_party_log_level` (WARNING): aiosmtpd's five lines per SMTP probe, alembic's plugin
list and LiteLLM's two lines per completion are INFO, so they are gone by default.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from temporalio import activity, workflow

from iaf.settings import Settings

REQUEST_ID: ContextVar[str | None] = ContextVar("iaf_request_id", default=None)

OWN_LOGGERS = (
    "iaf",
    "api",
    "workers",
    "activities",
    "workflows",
    # workflow.logger and activity.logger: our workflows' and activities' own events.
    "temporalio.workflow",
    "temporalio.activity",
)
# Libraries that attach a handler of their own: their lines go through ours instead.
_SELF_HANDLED = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy")
_MAX_FRAMES = 8

LogFormat = Literal["auto", "json", "text", "dev"]
ACCESS_LOGGER = "api.access"


def content_free_traceback(exc: BaseException) -> str:
    """`IntegrityError <- UniqueViolationError at api/x.py:12 post < ...`: no messages."""
    chain: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(type(current).__qualname__)
        current = current.__cause__ or current.__context__
    frames = traceback.extract_tb(exc.__traceback__)[-_MAX_FRAMES:]
    where = " < ".join(f"{_short_path(f.filename)}:{f.lineno} {f.name}" for f in reversed(frames))
    return " <- ".join(chain) + (f" at {where}" if where else "")


def _short_path(filename: str) -> str:
    marker = "site-packages/"
    if marker in filename:
        return filename.split(marker, 1)[1]
    parts = Path(filename).parts
    return "/".join(parts[-2:])


def _temporal_ids(record: logging.LogRecord) -> dict[str, Any]:
    """The ids of the workflow or activity a line was logged from (none outside Temporal)."""
    details = getattr(record, "temporal_activity", None) or getattr(
        record, "temporal_workflow", None
    )
    if isinstance(details, dict):
        ids = {
            "workflow_id": details.get("workflow_id"),
            "run_id": details.get("workflow_run_id") or details.get("run_id"),
            "workflow_type": details.get("workflow_type"),
            "activity": details.get("activity_type"),
            "attempt": details.get("attempt"),
        }
        return {k: v for k, v in ids.items() if v is not None}
    if activity.in_activity():
        info = activity.info()
        return {
            "workflow_id": info.workflow_id,
            "run_id": info.workflow_run_id,
            "workflow_type": info.workflow_type,
            "activity": info.activity_type,
            "attempt": info.attempt,
        }
    if workflow.in_workflow():
        winfo = workflow.info()
        return {
            "workflow_id": winfo.workflow_id,
            "run_id": winfo.run_id,
            "workflow_type": winfo.workflow_type,
        }
    return {}


class _Ids(logging.Filter):
    """Adds the process name, the request id and the Temporal ids to every record."""

    def __init__(self, process: str) -> None:
        super().__init__()
        self.process = process

    def filter(self, record: logging.LogRecord) -> bool:
        record.iaf_process = self.process
        request_id = REQUEST_ID.get()
        ids: dict[str, Any] = {"request_id": request_id} if request_id else {}
        ids.update(_temporal_ids(record))
        record.iaf_ids = ids
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": _iso(record.created),
            "level": record.levelname,
            "process": getattr(record, "iaf_process", None),
            "logger": record.name,
            "msg": record.getMessage(),
            **getattr(record, "iaf_ids", {}),
        }
        core = getattr(record, "temporal_log", None)  # a line forwarded from the Temporal SDK
        if core is not None and getattr(core, "fields", None):
            line["fields"] = core.fields
        if record.exc_info and record.exc_info[1] is not None:
            line["error"] = content_free_traceback(record.exc_info[1])
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`14:03:22 worker  WARNING sweep round failed (OSError) [workflow_id=…]`"""

    def format(self, record: logging.LogRecord) -> str:
        clock = time.strftime("%H:%M:%S", time.localtime(record.created))
        level = "" if record.levelno == logging.INFO else f"{record.levelname} "
        process = getattr(record, "iaf_process", "") or ""
        first_line = record.getMessage().strip().split("\n", 1)[0]
        text = f"{clock} {process:<7} {level}{first_line}"
        ids: dict[str, Any] = getattr(record, "iaf_ids", {})
        shown = [f"{k}={ids[k]}" for k in ("request_id", "workflow_id") if k in ids]
        if "activity" in ids:
            shown.append(f"activity={ids['activity']}#{ids.get('attempt', 1)}")
        if shown:
            text += f"  [{' '.join(shown)}]"
        if record.exc_info and record.exc_info[1] is not None:
            text += f"\n    {content_free_traceback(record.exc_info[1])}"
        return text


def _iso(created: float) -> str:
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
        + f".{int(created % 1 * 1000):03d}Z"
    )


def configure_logging(
    settings: Settings, process: str, *, console: LogFormat | None = None
) -> None:
    """Replace whatever logging was set up before with ours; safe to call again."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.setLevel(settings.third_party_log_level.upper())
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(settings.log_level.upper())
    ids = _Ids(process)
    chosen = console or settings.log_format
    if chosen == "auto":
        chosen = "text" if sys.stderr.isatty() else "json"
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(JsonFormatter() if chosen == "json" else TextFormatter())
    stream.addFilter(ids)
    if chosen == "dev":
        stream.addFilter(lambda record: record.name != ACCESS_LOGGER)
    root.addHandler(stream)
    if settings.log_file is not None:
        settings.log_file.parent.mkdir(parents=True, exist_ok=True)
        file = logging.FileHandler(settings.log_file, encoding="utf-8")
        file.setFormatter(JsonFormatter())
        file.addFilter(ids)
        root.addHandler(file)
    # Our filter adds the Temporal ids as fields: no need to repeat them inside the message.
    workflow.logger.workflow_info_on_message = False
    activity.logger.activity_info_on_message = False
    logging.captureWarnings(True)
    route_library_loggers(settings)


def route_library_loggers(settings: Settings) -> None:
    """Libraries that print through a handler of their own (LiteLLM) log through ours; call
    again once they are imported, since importing them adds the handler."""
    for name in _SELF_HANDLED:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True
        logger.setLevel(settings.third_party_log_level.upper())
