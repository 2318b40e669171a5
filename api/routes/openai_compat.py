"""OpenAI-compatible API: `/v1/models` lists the agents, `/v1/chat/completions` talks to one.

The route stays thin (DESIGN rule 1): it stores the conversation as the messages of a
private room (see `iaf.db.models.openai_sessions`), starts the same AgentReply workflow a
room mention starts, with IDs only, and relays that reply's room events — the deltas as
`chat.completion.chunk`s, the stored reply as the final answer. It never calls the LLM.

Choices a client may notice:
- The model is an agent id; the agent's persona stays the system prompt. The client's
  system (or developer) messages are stored as the caller's messages, so the agent reads
  them as instructions from the person it talks to.
- Replies through this API never hand off to another agent (an OpenAI model is one
  agent): they start at the maximum hand-off depth.
- A retried LLM call restarts the answer (agent.reset): see `AppendOnlyText`.
- The room (kind "api", the caller its only member) is listed with the caller's rooms, so
  API conversations can be read in the web client; GDPR export and erasure cover it as any
  private room.
- A streaming client that disconnects cancels its reply (credits are released); a request
  that waits longer than settings.openai_reply_timeout_seconds also cancels it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.background import BackgroundTask

from api.broker import Subscription
from api.deps import AppState, CurrentUser, SessionDep, StateDep
from api.errors import ApiError
from api.reply_events import AppendOnlyText, ReplyEvent, ReplyTimeout, follow_reply
from iaf.agents.registry import AgentPersona, get_registry
from iaf.db.models import User
from iaf.db.repositories.messages import MessageRepository, message_out
from iaf.db.repositories.openai_sessions import (
    OpenAISessionRepository,
    ReplyOutcome,
    conversation_digests,
    extend_digest,
)
from iaf.db.repositories.room_events import EventRepository
from iaf.db.repositories.rooms import RoomRepository
from iaf.settings import Settings
from iaf.workflow_calls import cancel_reply, reply_workflow_id, start_agent_reply
from schemas.agents import AgentReplyInput
from schemas.openai import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatMessageIn,
    Choice,
    ChunkChoice,
    ModelList,
    ModelOut,
    OpenAIError,
    OpenAIErrorBody,
    Usage,
)

log = logging.getLogger(__name__)

# Agents are data shipped with the release; OpenAI wants a creation time for each model.
MODELS_CREATED = 1_764_000_000
ROOM_KIND = "api"

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


router = APIRouter(prefix="/v1", tags=["openai"], route_class=OpenAIRoute)


def _model_out(persona: AgentPersona) -> ModelOut:
    return ModelOut(id=persona.id, created=MODELS_CREATED)


@router.get("/models")
async def list_models(user: CurrentUser) -> ModelList:
    return ModelList(data=[_model_out(p) for p in get_registry()])


@router.get("/models/{model_id}")
async def get_model(model_id: str, user: CurrentUser) -> ModelOut:
    return _model_out(_persona(model_id))


def _persona(model: str) -> AgentPersona:
    persona = get_registry().get(model.strip().lower())
    if persona is None:
        raise ApiError(
            404,
            "model_not_found",
            f"The model `{model}` does not exist (models are agent ids; see GET /v1/models)",
        )
    return persona


def _checked(messages: list[ChatMessageIn], settings: Settings) -> None:
    for i, message in enumerate(messages):
        size = len(message.content.encode())
        if size > settings.message_max_bytes:
            raise ApiError(
                413,
                "content_too_large",
                f"messages.{i}.content is {size} bytes; the limit is {settings.message_max_bytes}",
            )
    if not messages[-1].content.strip():
        raise ApiError(400, "empty_content", "the last user message must not be empty")


@dataclass(frozen=True)
class StoredTurn:
    """What one request stored: the room, its triggering message, where its events start."""

    conversation_id: uuid.UUID
    room_id: uuid.UUID
    trigger_id: int
    reply_id: str
    since_event_id: int
    tip: str
    user_id: uuid.UUID
    agent_id: str


async def store_turn(
    session: AsyncSession, user: User, persona: AgentPersona, messages: list[ChatMessageIn]
) -> StoredTurn:
    """Store the request's new messages, in a room that already holds the rest of the
    conversation when there is one, else in a new private room; one transaction."""
    turns = [(m.normalised_role, m.content) for m in messages]
    digests = conversation_digests(user.id, persona.id, turns)
    conversations = OpenAISessionRepository(session)
    found = await conversations.longest_continuation(user.id, persona.id, digests[:-1])
    held = 0
    if found is not None and await conversations.claim(
        found[0].id, digests[found[1] - 1], digests[-1]
    ):
        conversation, held = found
    else:
        room = await RoomRepository(session).create(
            user.org_id, user.id, f"API · {persona.name}", ROOM_KIND, "", False
        )
        conversation = await conversations.create(user.id, persona.id, room.id, digests[-1])
    trigger_id, since = await _insert_messages(
        session, user, persona, conversation.room_id, messages[held:]
    )
    reply_id = reply_workflow_id(trigger_id, persona.id)
    await conversations.record_reply(conversation.id, reply_id)
    await session.commit()
    return StoredTurn(
        conversation.id,
        conversation.room_id,
        trigger_id,
        reply_id,
        since,
        digests[-1],
        user.id,
        persona.id,
    )


async def _insert_messages(
    session: AsyncSession,
    user: User,
    persona: AgentPersona,
    room_id: uuid.UUID,
    messages: list[ChatMessageIn],
) -> tuple[int, int]:
    """Insert as room messages (never routed: the reply is started here); returns the last
    message id and the id of the last event written."""
    repository, events = MessageRepository(session), EventRepository(session)
    last_id = last_event = 0
    for message in messages:
        by_agent = message.normalised_role == "assistant"
        meta = {"openai_role": message.normalised_role}
        stored, _ = await repository.insert(
            room_id,
            None if by_agent else user.id,
            message.content,
            sender_agent_id=persona.id if by_agent else None,
            type_="agent" if by_agent else "text",
            meta=meta,
            routed=True,
        )
        out = message_out(stored, None if by_agent else user.name)
        last_event = await events.append(room_id, "message.new", out.model_dump(mode="json"))
        last_id = stored.id
    return last_id, last_event


@router.post("/chat/completions", response_model=None)
async def chat_completions(
    body: ChatCompletionRequest,
    user: CurrentUser,
    session: SessionDep,
    state: StateDep,
    response: Response,
) -> Response:
    settings = state.settings
    persona = _persona(body.model)
    _checked(body.messages, settings)
    await state.limiter.hit(f"openai:{user.id}", settings.posts_per_minute, 60, response, session)
    turn = await store_turn(session, user, persona, body.messages)
    await session.close()  # the reply may take a while: hold no pooled connection meanwhile
    subscription = state.broker.subscribe(str(turn.room_id))
    try:
        await _start(state, turn)
    except ApiError:
        state.broker.unsubscribe(subscription)
        raise
    headers = {k: v for k, v in response.headers.items() if k.lower().startswith("x-ratelimit")}
    completion = Completion(
        state, turn, subscription, body.model.strip().lower(), body.include_usage
    )
    if body.stream:
        return StreamingResponse(
            completion.chunks(),
            media_type="text/event-stream",
            headers={**headers, "Cache-Control": "no-store", "X-Accel-Buffering": "no"},
            # Also runs when the client left before the body started (the generator never ran).
            background=BackgroundTask(completion.close),
        )
    return await completion.whole(headers)


async def _start(state: AppState, turn: StoredTurn) -> None:
    """The messages are stored either way; without Temporal there is no reply to wait for."""
    reply = AgentReplyInput(
        reply_id=turn.reply_id,
        message_id=turn.trigger_id,
        room_id=str(turn.room_id),
        agent_id=turn.agent_id,
        requested_by=str(turn.user_id),
        depth=state.settings.agent_max_handoff_depth,
    )
    try:
        await start_agent_reply(state.temporal, state.settings, reply)
    except Exception as exc:
        log.warning("AgentReply %s not started (%s)", turn.reply_id, type(exc).__name__)
        raise ApiError(
            503, "temporal_unavailable", "the agent service is unavailable; retry later"
        ) from None


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
