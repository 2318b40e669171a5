"""Deleting a document or a memory: the quotes agents took from it go at once.

The item is already marked "deleting" (no agent reads it any more); here the replies that
quoted it lose those quotes and the owner's export archives holding it are withdrawn, in
the caller's transaction. RemoveVectors then deletes the points and the row (and, for a
document, its chunk texts). The caller commits, then removes the archives' files
(iaf.gdpr.service.remove_archives) with the names returned.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.models import KnowledgeDocument, Memory
from iaf.db.repositories.source_copies import SourceCopyRepository
from iaf.db.repositories.stale_archives import StaleArchiveRepository


async def forget_document(session: AsyncSession, document: KnowledgeDocument) -> list[str]:
    await SourceCopyRepository(session).forget_document(document.id, document.content)
    return await StaleArchiveRepository(session).withdraw_for(document.owner_id)


async def forget_memory(session: AsyncSession, memory: Memory) -> list[str]:
    await SourceCopyRepository(session).forget_memory(memory.id, memory.user_id, memory.content)
    return await StaleArchiveRepository(session).withdraw_for(memory.user_id)
