"""The agent directory: `@` autocomplete and one agent's card, straight from the persona files."""

from __future__ import annotations

from fastapi import APIRouter, Path, Query

from api.deps import CurrentUser, SettingsDep
from iaf.agents.registry import CATEGORIES, Category, get_registry
from iaf.errors import ApiError
from schemas.agents import AgentCategoryOut, AgentList, AgentOut

router = APIRouter(prefix="/api/agents", tags=["agents"])


@router.get("")
async def search_agents(
    user: CurrentUser,
    settings: SettingsDep,
    q: str = Query(default="", max_length=100, description="what was typed after @"),
    limit: int = Query(default=10, ge=1, le=50),
    category: Category | None = Query(default=None, description="only agents of this category"),
) -> AgentList:
    """Best matches first (exact id or alias, id prefix, name prefix, substring, description);
    an empty `q` lists every agent (of the category) by id. Any signed-in user may read it."""
    registry = get_registry()
    personas = registry.search(q, limit, category)
    return AgentList(
        items=[AgentOut.of(p, p.resolved_model(settings.default_llm_model)) for p in personas],
        categories=[AgentCategoryOut(id=c, count=len(registry.in_category(c))) for c in CATEGORIES],
    )


@router.get("/{agent_id}")
async def get_agent(
    user: CurrentUser, settings: SettingsDep, agent_id: str = Path(max_length=64)
) -> AgentOut:
    persona = get_registry().get(agent_id.lower())
    if persona is None:
        raise ApiError(404, "agent_not_found", f"no agent with id {agent_id!r}")
    return AgentOut.of(persona, persona.resolved_model(settings.default_llm_model))
