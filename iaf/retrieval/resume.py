"""Rule 5 for knowledge: documents, memories and deleted rooms whose vector job never ran are
started again."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from iaf.db.repositories.knowledge import KnowledgeRepository
from iaf.db.repositories.memories import MemoryRepository
from iaf.db.repositories.room_vector_removals import RoomVectorRemovalRepository
from iaf.settings import Settings
from iaf.workflow_calls import start_vector_job


async def resume_vector_jobs(
    sessionmaker: async_sessionmaker[AsyncSession], temporal: Client, settings: Settings
) -> int:
    """Start the jobs of documents and memories left pending or deleting.

    Workflow IDs are the business keys, so a job that did start is not started twice.
    """
    age = settings.knowledge_resume_after_seconds
    async with sessionmaker() as session:
        documents = await KnowledgeRepository(session).stale(age)
        memories = await MemoryRepository(session).stale(age)
        rooms = await RoomVectorRemovalRepository(session).stale(age)
    started = 0
    for document in documents:
        started += await start_vector_job(
            temporal,
            settings,
            "document",
            document.id,
            document.owner_id,
            removal=document.status == "deleting",
            room_id=document.room_id,
        )
    for memory in memories:
        started += await start_vector_job(
            temporal,
            settings,
            "memory",
            memory.id,
            memory.user_id,
            removal=memory.status == "deleting",
        )
    for room in rooms:
        started += await start_vector_job(
            temporal,
            settings,
            "room",
            room.room_id,
            room.org_id,
            removal=True,
            room_id=room.room_id,
        )
    return started
