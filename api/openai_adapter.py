"""The OpenAI wire format: its error shape on every route of `/v1`, and `Completion`, which
relays an AgentReply's room events as `chat.completion.chunk`s or as one `chat.completion`.

- A retried LLM call restarts the answer (agent.reset): see `AppendOnlyText`.
- A streaming client that disconnects cancels its reply (credits are released); a request
  that waits longer than settings.openai_reply_timeout_seconds also cancels it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from api.broker import Subscription
from api.deps import AppState
from api.reply_events import AppendOnlyText, ReplyEvent, ReplyTimeout, follow_reply
from iaf.db.repositories.openai_sessions import OpenAISessionRepository, ReplyOutcome, extend_digest
from iaf.errors import ApiError
from iaf.openai_compat.service import StoredTurn
from iaf.workflow_calls import cancel_reply
from schemas.openai import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    Choice,
    ChunkChoice,
    OpenAIError,
    OpenAIErrorBody,
    Usage,
)

_ERROR_TYPES = {
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    429: "rate_limit_error",
}
# agent.error codes (activities.agents_db) -> HTTP status for a non-streaming request.
_REPLY_ERROR_STATUS = {
    "insufficient_credits": 402,
    "cancelled": 409,
    "no_requester": 403,
    "unknown_agent": 404,
    "llm_rejected": 502,
    "llm_failed": 502,
    "timeout": 504,
}


def openai_error(
    status: int,
    message: str,
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The OpenAI error shape; SDKs read `error.message` and map the status to a class."""
    kind = _ERROR_TYPES.get(status, "invalid_request_error" if status < 500 else "api_error")
    body = OpenAIError(error=OpenAIErrorBody(message=message, type=kind, param=param, code=code))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def _validation_error(exc: RequestValidationError) -> JSONResponse:
    errors = list(exc.errors())
    first = errors[0] if errors else {}
    where = [str(p) for p in first.get("loc", ()) if p != "body"]
    param = ".".join(where) or None
    if first.get("type") == "json_invalid":
        return openai_error(400, "the body is not valid JSON", "malformed_json")
    message = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}: {e.get('msg')}"
        for e in errors[:5]
    )
    return openai_error(400, message, "invalid_request", param)


class OpenAIRoute(APIRoute):
    """Every error of these routes leaves in the OpenAI shape, including auth and validation."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def openai_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return _validation_error(exc)
            except ApiError as exc:
                return openai_error(exc.status, exc.message, exc.code, headers=exc.headers)

        return openai_handler


class ReplyFailed(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


_background: set[asyncio.Task[None]] = set()


class Completion:
    """One request's reply, relayed as OpenAI chunks or as one chat.completion."""

    def __init__(
        self,
        state: AppState,
        turn: StoredTurn,
        subscription: Subscription,
        model: str,
        include_usage: bool,
    ) -> None:
        self.state = state
        self.turn = turn
        self.subscription = subscription
        self.model = model
        self.include_usage = include_usage
        self.id = f"chatcmpl-{turn.reply_id}"
        self.created = int(time.time())
        self.finished = False

    def _events(self) -> AsyncIterator[ReplyEvent]:
        settings = self.state.settings
        return follow_reply(
            self.state,
            self.subscription,
            self.turn.room_id,
            self.turn.reply_id,
            self.turn.since_event_id,
            settings.openai_reply_timeout_seconds,
            max(settings.sse_heartbeat_seconds, 1.0),
        )

    async def _outcome(self, event: ReplyEvent) -> ReplyOutcome:
        """The stored reply behind agent.done; moves the conversation's tip past it."""
        if event.type == "agent.error":
            error = event.data.get("error") or {}
            raise ReplyFailed(str(error.get("code", "failed")), str(error.get("message", "")))
        async with self.state.sessionmaker() as session:
            conversations = OpenAISessionRepository(session)
            outcome = await conversations.reply_outcome(self.turn.reply_id)
            if outcome is None:
                raise ReplyFailed("failed", "the reply is missing")
            tip = extend_digest(self.turn.tip, "assistant", outcome.content or "")
            await conversations.advance_after_reply(self.turn.conversation_id, self.turn.tip, tip)
            await session.commit()
        return outcome

    def _usage(self, outcome: ReplyOutcome) -> Usage:
        prompt = int(outcome.usage.get("prompt_tokens", 0))
        completion = int(outcome.usage.get("completion_tokens", 0))
        return Usage(
            prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
        )

    async def whole(self, headers: dict[str, str]) -> Response:
        try:
            async for event in self._events():
                if event.type in ("agent.done", "agent.error"):
                    outcome = await self._outcome(event)
                    self.finished = True
                    return JSONResponse(self._completion(outcome).model_dump(), headers=headers)
        except ReplyFailed as failed:
            self.finished = True
            status = _REPLY_ERROR_STATUS.get(failed.code, 502)
            return openai_error(status, failed.message or "the agent could not answer", failed.code)
        except ReplyTimeout:
            return openai_error(504, "the agent did not answer in time", "timeout")
        finally:
            self.close()
        return openai_error(502, "the reply ended without an answer", "failed")

    def _completion(self, outcome: ReplyOutcome) -> ChatCompletion:
        return ChatCompletion(
            id=self.id,
            created=self.created,
            model=self.model,
            choices=[
                Choice(
                    message=AssistantMessage(content=outcome.content or ""),
                    finish_reason=str(outcome.usage.get("finish_reason") or "stop"),
                )
            ],
            usage=self._usage(outcome),
        )

    async def chunks(self) -> AsyncIterator[str]:
        text = AppendOnlyText()
        try:
            yield self._chunk({"role": "assistant", "content": ""})
            async for event in self._events():
                if event.type == "keepalive":
                    yield ": keep-alive\n\n"
                elif event.type == "agent.reset":
                    text.reset(int(event.data.get("attempt", text.attempt + 1)))
                elif event.type == "agent.delta":
                    new = text.delta(
                        str(event.data.get("text", "")),
                        int(event.data.get("attempt", 1)),
                        _int_or_none(event.data.get("seq")),
                    )
                    if new:
                        yield self._chunk({"content": new})
                elif event.type in ("agent.done", "agent.error"):
                    outcome = await self._outcome(event)
                    self.finished = True
                    rest = text.finish(outcome.content or "")
                    if rest:
                        yield self._chunk({"content": rest})
                    finish = str(outcome.usage.get("finish_reason") or "stop")
                    yield self._chunk({}, finish)
                    if self.include_usage:
                        yield self._usage_chunk(self._usage(outcome))
                    yield "data: [DONE]\n\n"
                    return
        except ReplyFailed as failed:
            self.finished = True
            yield _error_event(failed.code, failed.message or "the agent could not answer")
        except ReplyTimeout:
            yield _error_event("timeout", "the agent did not answer in time")
        finally:
            self.close()

    def _chunk(self, delta: dict[str, str], finish: str | None = None) -> str:
        chunk = ChatCompletionChunk(
            id=self.id,
            created=self.created,
            model=self.model,
            choices=[ChunkChoice(delta=delta, finish_reason=finish)],
        )
        return _data(chunk.model_dump(exclude=None if self.include_usage else {"usage"}))

    def _usage_chunk(self, usage: Usage) -> str:
        chunk = ChatCompletionChunk(
            id=self.id, created=self.created, model=self.model, choices=[], usage=usage
        )
        return _data(chunk.model_dump())

    def close(self) -> None:
        """Unsubscribe; a reply nobody waits for any more is cancelled (its credits released)."""
        self.state.broker.unsubscribe(self.subscription)
        if not self.finished:
            self.finished = True
            task = asyncio.get_running_loop().create_task(self._cancel())
            _background.add(task)
            task.add_done_callback(_background.discard)

    async def _cancel(self) -> None:
        with contextlib.suppress(Exception):
            await cancel_reply(self.state.temporal, self.turn.reply_id)


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, int) else None


def _data(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n"


def _error_event(code: str, message: str) -> str:
    status = _REPLY_ERROR_STATUS.get(code, 502)
    kind = _ERROR_TYPES.get(status, "invalid_request_error" if status < 500 else "api_error")
    return _data({"error": {"message": message, "type": kind, "param": None, "code": code}})
