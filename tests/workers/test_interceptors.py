"""Activity failures reach Temporal history without the data their messages quote (rule 2).

A database error names its SQL parameters and the values it refused; the worker interceptor
turns every such exception into an ApplicationError carrying only the class name, and the
engine hides parameters anyway. The probes run real SQL against the embedded PostgreSQL on a
real Temporal dev server and search the raw history (payloads and failures) for a marker that
was only ever in the failing statement, never in a workflow or activity input.
"""

from __future__ import annotations

import ast
import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity, workflow
from temporalio.api.history.v1 import History
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from iaf.db.engine import make_engine, make_sessionmaker
from iaf.db.repositories.messages import MessageRepository
from iaf.workflow_calls import reply_workflow_id, route_workflow_id
from tests.agent_helpers import reply_result, temporal
from tests.helpers import signup
from tests.workers.db_faults import answers_refused
from workers.interceptors import worker_interceptors

REPO = Path(__file__).resolve().parents[2]
QUEUE = "iaf-interceptor-probe"
ONCE = RetryPolicy(maximum_attempts=1)
TWICE = RetryPolicy(initial_interval=timedelta(milliseconds=50), maximum_attempts=2)


@dataclass
class Probes:
    """Activities that fail the ways real ones do; the marker lives only in this object."""

    sessionmaker: async_sessionmaker[AsyncSession]
    marker: str
    attempts: dict[str, int] = field(default_factory=dict)

    def _count(self) -> None:
        name = activity.info().activity_type
        self.attempts[name] = self.attempts.get(name, 0) + 1

    @activity.defn(name="probe_db_value_error")
    async def db_value_error(self) -> None:
        """PostgreSQL quotes the refused value in its own message, not only in the params."""
        self._count()
        async with self.sessionmaker() as session:
            await session.execute(text("SELECT CAST(:v AS integer)"), {"v": self.marker})

    @activity.defn(name="probe_db_insert_error")
    async def db_insert_error(self) -> None:
        """A real repository insert whose parameters hold message text (FK violation)."""
        self._count()
        async with self.sessionmaker() as session:
            await MessageRepository(session).insert(uuid.uuid4(), None, self.marker)
            await session.commit()

    @activity.defn(name="probe_wrapped")
    async def wrapped(self) -> None:
        self._count()
        raise ApplicationError("our own message", type="Ours") from ValueError(self.marker)

    @activity.defn(name="probe_value_error")
    async def value_error(self) -> None:
        self._count()
        raise ValueError(f"bad value {self.marker}")

    @activity.defn(name="probe_wait_for_cancel")
    async def wait_for_cancel(self) -> str:
        self._count()
        while True:
            activity.heartbeat()
            await asyncio.sleep(0.1)


@workflow.defn(sandboxed=False)
class FailureProbe:
    @workflow.run
    async def run(self) -> list[str]:
        seen: list[str] = []
        for name in ("probe_db_value_error", "probe_db_insert_error", "probe_wrapped"):
            try:
                await workflow.execute_activity(
                    name, start_to_close_timeout=timedelta(seconds=20), retry_policy=TWICE
                )
            except ActivityError as err:
                seen.append(_describe(name, err))
            try:
                await workflow.execute_local_activity(
                    name, start_to_close_timeout=timedelta(seconds=20), retry_policy=TWICE
                )
            except FailureError as err:  # this SDK raises the bare ApplicationError here
                seen.append(_describe(f"local {name}", err))
        try:
            await workflow.execute_activity(
                "probe_value_error",
                start_to_close_timeout=timedelta(seconds=20),
                retry_policy=RetryPolicy(
                    maximum_attempts=5, non_retryable_error_types=["ValueError"]
                ),
            )
        except ActivityError as err:
            seen.append(_describe("probe_value_error", err))
        handle = workflow.start_activity(
            "probe_wait_for_cancel",
            start_to_close_timeout=timedelta(seconds=30),
            heartbeat_timeout=timedelta(seconds=5),
            retry_policy=ONCE,
        )
        await workflow.sleep(0.5)
        handle.cancel()
        try:
            await handle
        except ActivityError as err:
            seen.append(_describe("probe_wait_for_cancel", err))
        return seen


def _describe(name: str, err: FailureError) -> str:
    cause: BaseException | None = err.cause if isinstance(err, ActivityError) else err
    chain = []
    while cause is not None:
        label = type(cause).__name__
        if isinstance(cause, ApplicationError):
            label += f"[{cause.type}:{cause.message}:{cause.non_retryable}]"
        chain.append(label)
        cause = cause.__cause__
    return f"{name} -> {' / '.join(chain)}"


async def history_blob(client: Client, workflow_id: str) -> bytes:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return History(events=history.events).SerializeToString() + history.to_json().encode()


@pytest.fixture
async def sessionmaker(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(database_url, 2)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def test_activity_failures_carry_only_the_exception_type(settings, sessionmaker):
    client = await temporal(settings)
    marker = f"Secret-{uuid.uuid4().hex}"
    probes = Probes(sessionmaker, marker)
    workflow_id = f"probe-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client,
        task_queue=QUEUE,
        workflows=[FailureProbe],
        activities=[
            probes.db_value_error,
            probes.db_insert_error,
            probes.wrapped,
            probes.value_error,
            probes.wait_for_cancel,
        ],
        interceptors=worker_interceptors(),
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        seen = await client.execute_workflow(
            FailureProbe.run, id=workflow_id, task_queue=QUEUE, result_type=list[str]
        )
    assert seen == [
        "probe_db_value_error -> ApplicationError[DBAPIError:DBAPIError:False]",
        "local probe_db_value_error -> ApplicationError[DBAPIError:DBAPIError:False]",
        "probe_db_insert_error -> ApplicationError[IntegrityError:IntegrityError:False]",
        "local probe_db_insert_error -> ApplicationError[IntegrityError:IntegrityError:False]",
        "probe_wrapped -> ApplicationError[Ours:our own message:False]"
        " / ApplicationError[ValueError:ValueError:False]",
        "local probe_wrapped -> ApplicationError[Ours:our own message:False]"
        " / ApplicationError[ValueError:ValueError:False]",
        "probe_value_error -> ApplicationError[ValueError:ValueError:False]",
        "probe_wait_for_cancel -> CancelledError",
    ]
    assert probes.attempts["probe_db_value_error"] == 4, "retryable as before (2 + 2 local)"
    assert probes.attempts["probe_value_error"] == 1, "non_retryable_error_types still match"
    blob = await history_blob(client, workflow_id)
    assert b"DBAPIError" in blob and b"IntegrityError" in blob, "the scan reads the failures"
    assert marker.encode() not in blob
    assert marker[:20].encode() not in blob


async def test_the_engine_hides_sql_parameters(sessionmaker):
    marker = f"Hidden-{uuid.uuid4().hex}"
    async with sessionmaker() as session:
        with pytest.raises(DBAPIError) as raised:
            await MessageRepository(session).insert(uuid.uuid4(), None, marker)
    assert marker not in str(raised.value)
    assert "hide_parameters" in str(raised.value)


async def test_a_database_error_on_the_session_worker_keeps_the_answer_out_of_history(
    client, settings, database_url
):
    """The real worker (running_worker) registers the interceptor: an AgentReply whose stored
    answer PostgreSQL refuses, quoting it, fails with a history free of that answer."""
    marker = f"Wombat{uuid.uuid4().hex[:12]}"
    tc = await temporal(settings)
    with answers_refused(database_url, marker):
        alice = await signup(client, "Wilhelmina Failure-Subject")
        room = await alice.new_room("failures")
        message = await alice.say(room["id"], f"@architect how do we ship {marker} safely?")
        result = await reply_result(tc, message["id"], "architect")
        assert result.status == "error" and result.error_code == "llm_failed"
    reply = await history_blob(tc, reply_workflow_id(message["id"], "architect"))
    assert b"stream_agent_reply" in reply and b"DBAPIError" in reply, "the failure is there"
    route = await history_blob(tc, route_workflow_id(message["id"]))
    for blob in (reply, route):
        assert marker.encode() not in blob
        assert b"Wilhelmina" not in blob


# Expressions our ApplicationError messages may interpolate: class names, step names, ids,
# SMTP codes, and stepping.py's `message`, which is safe_error() (our own text or a class name).
ALLOWED_IN_MESSAGES = {
    "name",
    "status",  # a request's status: one of a fixed set of words
    "step",
    "request_id",
    "exc.code",
    "type(exc).__name__",
    "message",
    "columns",  # the table.column:failed:SQLSTATE of a refused scrub: names, never values
    "error.reason",  # a crawl's Unavailable: an HTTP status or an exception's class name
}


def test_our_application_errors_interpolate_no_content() -> None:
    """Every ApplicationError(...) message in the sources is a literal or interpolates only ids and
    class names; a new interpolation fails here until someone checks it carries no data."""
    found = 0
    sources = ("iaf", "api", "workflows", "activities", "workers", "schemas")
    for path in sorted(p for source in sources for p in (REPO / source).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", getattr(node.func, "attr", None)) == "ApplicationError"
            ):
                continue
            found += 1
            message = node.args[0] if node.args else None
            where = f"{path.relative_to(REPO)}:{node.lineno}"
            if isinstance(message, ast.Constant):
                continue
            if isinstance(message, ast.JoinedStr):
                parts = [v.value for v in message.values if isinstance(v, ast.FormattedValue)]
                used = {ast.unparse(p) for p in parts}
            else:
                used = {ast.unparse(message) if message is not None else "<none>"}
            assert used <= ALLOWED_IN_MESSAGES, f"{where} interpolates {used - ALLOWED_IN_MESSAGES}"
            assert len(node.args) <= 1, f"{where} passes details"
    assert found >= 15
