"""LLM activities: stream an agent's answer into the room, classify a message's intent.

Calls go through `litellm.acompletion(..., num_retries=0)`: Temporal owns retries. Errors
leave as ApplicationErrors that name the exception type only, because a provider's error
text may quote the prompt and activity failures are stored in workflow history (rule 2).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import litellm
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from iaf.agents.context import build_messages
from iaf.agents.intent import build_classifier_prompt, parse_classifier_answer
from iaf.agents.registry import get_registry
from iaf.db.engine import autocommit_sessions
from iaf.db.repositories.agents import AgentRunRepository
from iaf.db.repositories.messages import MessageRepository
from iaf.observability.metrics import FIRST_DELTA
from iaf.settings import Settings
from schemas.agents import ClassifyRequest, ClassifyResult, StreamRequest, StreamResult

# The provider said no: retrying the same request cannot help.
_REJECTIONS: tuple[type[Exception], ...] = (
    litellm.exceptions.AuthenticationError,
    litellm.exceptions.BadRequestError,
    litellm.exceptions.NotFoundError,
    litellm.exceptions.PermissionDeniedError,
    litellm.exceptions.UnprocessableEntityError,
)


def llm_failure(exc: BaseException) -> ApplicationError:
    """A content-free failure: the exception type, retryable unless the provider refused."""
    name = type(exc).__name__
    if isinstance(exc, _REJECTIONS):
        return ApplicationError(
            f"LLM refused the request ({name})", type="LlmRejected", non_retryable=True
        )
    return ApplicationError(f"LLM call failed ({name})", type="LlmUnavailable")


def superseded() -> ApplicationError:
    """A later attempt of the same streaming step owns the reply: this one stops writing."""
    return ApplicationError(
        "a later attempt streams this reply", type="StreamSuperseded", non_retryable=True
    )


class DeltaWriter:
    """Coalesces streamed text into `agent.delta` events, at most one per interval."""

    def __init__(
        self,
        session: AsyncSession,
        room_id: Any,
        reply_id: str,
        agent_id: str,
        attempt: int,
        interval: float,
        started_at: datetime | None = None,
    ) -> None:
        self.runs = AgentRunRepository(session)
        # When the reply began (agent_runs.created_at): the first delta's latency from there.
        self.started_at = started_at
        self.session = session
        self.room_id = room_id
        self.reply_id = reply_id
        self.agent_id = agent_id
        self.attempt = attempt
        self.interval = interval
        self.buffer: list[str] = []
        self.seq = 0
        self.chars = 0
        self.last_flush = -math.inf

    def add(self, text: str) -> None:
        # PostgreSQL text cannot hold NUL; a model that emits one must not fail the reply.
        if text := text.replace("\x00", ""):
            self.buffer.append(text)

    def due_in(self, now: float) -> float | None:
        """Seconds until buffered text must go out (None: nothing buffered)."""
        if not self.buffer:
            return None
        return max(0.0, self.last_flush + self.interval - now)

    async def flush(self, now: float) -> None:
        if not self.buffer:
            return
        text = "".join(self.buffer)
        self.buffer.clear()
        owned = await self.runs.append_stream_event(
            self.reply_id,
            self.attempt,
            self.room_id,
            "agent.delta",
            {
                "reply_id": self.reply_id,
                "agent_id": self.agent_id,
                "seq": self.seq,
                "attempt": self.attempt,
                "text": text,
            },
        )
        await self.session.commit()
        if not owned:
            raise superseded()
        if self.seq == 0 and self.attempt == 1 and self.started_at is not None:
            waited = datetime.now(UTC) - self.started_at
            FIRST_DELTA.labels(self.agent_id).observe(max(0.0, waited.total_seconds()))
        self.seq += 1
        self.chars += len(text)
        self.last_flush = now
        activity.heartbeat(self.seq)


class LlmActivities:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.sessionmaker = sessionmaker
        self.live_sessions = autocommit_sessions(sessionmaker)
        self.settings = settings

    @staticmethod
    async def _not_streamable(runs: AgentRunRepository, reply_id: str) -> StreamResult:
        """Why the claim failed: the reply is stored already, or it is not running."""
        run = await runs.get(reply_id)
        if run is not None and run.reply_message_id is not None:
            return StreamResult(
                attempt=run.stream_attempt or 0,
                deltas=0,
                chars=0,
                prompt_tokens=0,
                completion_tokens=0,
                already_persisted=True,
            )
        raise ApplicationError(
            "the reply is not running", type="ReplyNotRunning", non_retryable=True
        )

    @activity.defn(name="stream_agent_reply")
    async def stream_reply(self, request: StreamRequest) -> StreamResult:
        """Stream the answer as deltas; a retry first sends agent.reset and starts afresh.

        Every write here is one statement that commits on its own (the deltas must show at
        once), guarded by the claim this attempt made: the stream's attempt number counts the
        claims (not Temporal's attempts, which restart when an operator resets the workflow).
        """
        async with self.live_sessions() as session:
            runs = AgentRunRepository(session)
            run = await runs.claim_stream(request.reply_id)
            if run is None:
                return await self._not_streamable(runs, request.reply_id)
            attempt = run.stream_attempt or 1
            persona = get_registry().get(run.agent_id)
            if persona is None:
                raise ApplicationError("unknown agent", type="UnknownAgent", non_retryable=True)
            if attempt > 1:
                await runs.append_stream_event(
                    run.reply_id,
                    attempt,
                    run.room_id,
                    "agent.reset",
                    {"reply_id": run.reply_id, "agent_id": run.agent_id, "attempt": attempt},
                )
            messages = build_messages(run.context or {}, persona, request.handoff_hint)
            model = persona.resolved_model(self.settings.default_llm_model)
            writer = DeltaWriter(
                session,
                run.room_id,
                run.reply_id,
                run.agent_id,
                attempt,
                self.settings.delta_coalesce_ms / 1000,
                run.created_at,
            )
            usage, finish = await self._stream(model, messages, persona.temperature, writer)
            answer = usage.pop("answer").replace("\x00", "")
            stored = await runs.store_answer(
                run.reply_id,
                attempt,
                answer,
                {**usage, "model": model, "finish_reason": finish, "attempt": attempt},
            )
            await session.commit()
            if not stored:
                raise superseded()
        return StreamResult(
            attempt=attempt,
            deltas=writer.seq,
            chars=writer.chars,
            prompt_tokens=usage["prompt_tokens"],
            completion_tokens=usage["completion_tokens"],
            finish_reason=finish,
        )

    async def _stream(
        self, model: str, messages: list[dict[str, str]], temperature: float, writer: DeltaWriter
    ) -> tuple[dict[str, Any], str | None]:
        try:
            response = await litellm.acompletion(
                model=model,
                messages=messages,
                stream=True,
                num_retries=0,
                temperature=temperature,
                max_tokens=self.settings.reply_max_tokens,
                stream_options={"include_usage": True},
                drop_params=True,
            )
            return await self._pump(response, messages, model, writer)
        except (asyncio.CancelledError, ApplicationError, SQLAlchemyError):
            raise  # ours, or the database's (the interceptor keeps only its class name)
        except Exception as exc:
            activity.logger.warning("stream failed: %s", type(exc).__name__)
            raise llm_failure(exc) from None

    async def _pump(
        self, response: Any, messages: list[dict[str, str]], model: str, writer: DeltaWriter
    ) -> tuple[dict[str, Any], str | None]:
        """Read chunks, flushing buffered text when due even while the model is silent."""
        loop = asyncio.get_running_loop()
        info = activity.info()
        beat = max(
            0.2, (info.heartbeat_timeout.total_seconds() / 3) if info.heartbeat_timeout else 5
        )
        chunks: AsyncIterator[Any] = response.__aiter__()
        parts: list[str] = []
        usage: Any = None
        finish: str | None = None
        pending: asyncio.Future[Any] = asyncio.ensure_future(chunks.__anext__())
        try:
            while True:
                due = writer.due_in(loop.time())
                done, _ = await asyncio.wait({pending}, timeout=beat if due is None else due)
                if not done:
                    await writer.flush(loop.time())
                    activity.heartbeat(writer.seq)
                    continue
                try:
                    chunk = pending.result()
                except StopAsyncIteration:
                    break
                usage = getattr(chunk, "usage", None) or usage
                for choice in getattr(chunk, "choices", None) or []:
                    text = getattr(choice.delta, "content", None) or ""
                    parts.append(text)
                    writer.add(text)
                    finish = getattr(choice, "finish_reason", None) or finish
                if writer.due_in(loop.time()) == 0:
                    await writer.flush(loop.time())
                pending = asyncio.ensure_future(chunks.__anext__())
        finally:
            if not pending.done():
                pending.cancel()
        await writer.flush(loop.time())
        answer = "".join(parts)
        return _usage(usage, messages, answer, model), finish

    @activity.defn(name="classify_intent")
    async def classify_intent(self, request: ClassifyRequest) -> ClassifyResult:
        """Ask a small LLM which agent fits a message keyword routing found ambiguous."""
        async with self.sessionmaker() as session:
            found = await MessageRepository(session).get(request.message_id)
        if found is None or found[0].deleted_at is not None:
            return ClassifyResult(agent_id=None)
        registry = get_registry()
        prompt = build_classifier_prompt(found[0].content, registry, request.candidates or None)
        model = self.settings.classifier_model or self.settings.default_llm_model
        try:
            response = await litellm.acompletion(
                model=model, messages=prompt, num_retries=0, max_tokens=20, temperature=0.0
            )
        except Exception as exc:
            raise llm_failure(exc) from None
        answer = response.choices[0].message.content or ""
        agent_id = parse_classifier_answer(answer, registry)
        if agent_id is not None and request.candidates and agent_id not in request.candidates:
            agent_id = None
        return ClassifyResult(agent_id=agent_id)


def _usage(usage: Any, messages: list[dict[str, str]], answer: str, model: str) -> dict[str, Any]:
    """Token counts from the provider's usage chunk, or counted locally when it sent none."""
    prompt = getattr(usage, "prompt_tokens", None) if usage is not None else None
    completion = getattr(usage, "completion_tokens", None) if usage is not None else None
    if prompt is None:
        prompt = litellm.token_counter(model=model, messages=messages)
    if completion is None:
        completion = litellm.token_counter(model=model, text=answer) if answer else 0
    return {"prompt_tokens": int(prompt), "completion_tokens": int(completion), "answer": answer}
