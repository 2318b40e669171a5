"""OpenAI-compatible API: `/v1/models` lists the agents, `/v1/chat/completions` talks to one.

The route stays thin (DESIGN rule 1): iaf.openai_compat.service stores the conversation and
starts the same AgentReply workflow a room mention starts, with IDs only; api.openai_adapter
relays that reply's room events — the deltas as `chat.completion.chunk`s, the stored reply as
the final answer. It never calls the LLM.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from api.deps import CurrentUser, SessionDep, StateDep
from api.openai_adapter import Completion, OpenAIRoute
from iaf.agents.registry import get_registry
from iaf.errors import ApiError
from iaf.openai_compat.service import check_messages, persona_for, start_reply, store_turn
from schemas.openai import ChatCompletionRequest, ModelList, ModelOut

# Agents are data shipped with the release; OpenAI wants a creation time for each model.
MODELS_CREATED = 1_764_000_000

router = APIRouter(prefix="/v1", tags=["openai"], route_class=OpenAIRoute)


@router.get("/models")
async def list_models(user: CurrentUser) -> ModelList:
    return ModelList(data=[ModelOut(id=p.id, created=MODELS_CREATED) for p in get_registry()])


@router.get("/models/{model_id}")
async def get_model(model_id: str, user: CurrentUser) -> ModelOut:
    return ModelOut(id=persona_for(model_id).id, created=MODELS_CREATED)


@router.post("/chat/completions", response_model=None)
async def chat_completions(
    body: ChatCompletionRequest,
    user: CurrentUser,
    session: SessionDep,
    state: StateDep,
    response: Response,
) -> Response:
    settings = state.settings
    persona = persona_for(body.model)
    check_messages(body.messages, settings)
    await state.limiter.hit(f"openai:{user.id}", settings.posts_per_minute, 60, response, session)
    turn = await store_turn(session, user, persona, body.messages)
    await session.close()  # the reply may take a while: hold no pooled connection meanwhile
    subscription = state.broker.subscribe(str(turn.room_id))
    try:
        await start_reply(state.temporal, settings, turn)
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
