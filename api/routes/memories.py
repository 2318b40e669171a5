"""A user's memories: short facts agents should remember about the person asking.

Private: only their owner lists or deletes them, and an agent reads them only for replies
that owner requested. Each memory is embedded by IndexMemory (`memory-{id}`); deleting
starts RemoveVectors and hides the memory from agents at once.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Query, Response

from api.deps import CurrentUser, SessionDep, StateDep
from iaf.db.repositories.memories import MemoryRepository
from iaf.errors import ApiError
from iaf.gdpr.service import remove_archives
from iaf.knowledge_removal import forget_memory
from iaf.workflow_calls import best_effort, start_vector_job
from schemas.knowledge import MemoryCreate, MemoryList, MemoryOut

router = APIRouter(prefix="/api/memories", tags=["memories"])


@router.post("", status_code=201)
async def create_memory(
    body: MemoryCreate, user: CurrentUser, session: SessionDep, state: StateDep
) -> MemoryOut:
    settings = state.settings
    content = body.content.strip()
    if not content:
        raise ApiError(422, "empty_content", "content must not be empty")
    size = len(content.encode())
    if size > settings.memory_max_bytes:
        raise ApiError(
            413,
            "content_too_large",
            f"a memory is at most {settings.memory_max_bytes} bytes; this one is {size}",
        )
    memories = MemoryRepository(session)
    if await memories.count_for(user.id) >= settings.memories_per_user:
        raise ApiError(409, "too_many_memories", "delete a memory before adding another")
    memory = await memories.create(user.id, user.org_id, content)
    await session.commit()
    await best_effort(
        f"IndexMemory for {memory.id}",
        start_vector_job(state.temporal, settings, "memory", memory.id, user.id),
    )
    return MemoryOut.model_validate(memory, from_attributes=True)


@router.get("")
async def list_memories(
    user: CurrentUser,
    session: SessionDep,
    limit: int = Query(default=50, ge=1, le=200),
    offset: int = Query(default=0, ge=0, le=100_000),
) -> MemoryList:
    items = await MemoryRepository(session).list_for(user.id, limit, offset)
    return MemoryList(
        items=[MemoryOut.model_validate(m, from_attributes=True) for m in items],
        next_offset=offset + limit if len(items) == limit else None,
    )


@router.delete("/{memory_id}", status_code=204)
async def delete_memory(
    memory_id: uuid.UUID, user: CurrentUser, session: SessionDep, state: StateDep
) -> Response:
    memories = MemoryRepository(session)
    memory = await memories.get(memory_id, for_update=True)
    if memory is None or memory.user_id != user.id or memory.status == "deleting":
        raise ApiError(404, "memory_not_found", "memory not found")
    await memories.set_status(memory.id, "deleting")
    # Replies that quoted it lose the quotes now; RemoveVectors deletes its point and row.
    stale = await forget_memory(session, memory)
    await session.commit()
    remove_archives(state.settings, stale)
    await best_effort(
        f"RemoveVectors for memory {memory.id}",
        start_vector_job(
            state.temporal, state.settings, "memory", memory.id, user.id, removal=True
        ),
    )
    return Response(status_code=204)
