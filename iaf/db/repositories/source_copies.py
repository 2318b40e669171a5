"""What agents quoted of a document or a memory, redacted when it is deleted or erased.

A reply cites a document by id (`messages.metadata.sources`) and a memory through its run
(`agent_runs.context.memories`, kept as references once the run is over). Deleting either
leaves the reply in place, with every run of 4+ words it copied from the item replaced
(iaf.privacy.fingerprints), in the message and in its events.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.erasure_patterns import ERASED
from iaf.privacy.fingerprints import fingerprint, redact

_CITING_DOCUMENT = (
    "SELECT id, room_id, content FROM messages WHERE type = 'agent' AND deleted_at IS NULL"
    " AND metadata -> 'sources' ? :item"
)
_USING_MEMORY = (
    "SELECT m.id, m.room_id, m.content FROM agent_runs r JOIN messages m"
    " ON m.id = r.reply_message_id WHERE r.requested_by = :owner AND m.deleted_at IS NULL"
    " AND r.context -> 'memories' @> jsonb_build_array(jsonb_build_object('memory_id',"
    " CAST(:item AS text)))"
)


class SourceCopyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def forget_document(self, document_id: uuid.UUID, content: str) -> int:
        return await self._redact(_CITING_DOCUMENT, {"item": str(document_id)}, content)

    async def forget_memory(self, memory_id: uuid.UUID, owner_id: uuid.UUID, content: str) -> int:
        params = {"item": str(memory_id), "owner": owner_id}
        return await self._redact(_USING_MEMORY, params, content)

    async def forget_all_of(self, user_id: uuid.UUID) -> int:
        """Every document and memory the person owns (an erasure, before they go)."""
        changed = 0
        documents = await self.session.execute(
            text("SELECT id, content FROM knowledge_documents WHERE owner_id = :uid"),
            {"uid": user_id},
        )
        for document_id, content in documents.all():
            changed += await self.forget_document(document_id, content)
        memories = await self.session.execute(
            text("SELECT id, content FROM memories WHERE user_id = :uid"), {"uid": user_id}
        )
        for memory_id, content in memories.all():
            changed += await self.forget_memory(memory_id, user_id, content)
        return changed

    async def _redact(self, citing: str, params: dict[str, Any], content: str) -> int:
        prints = fingerprint(content)
        if not prints:
            return 0
        changed = 0
        for message_id, room_id, text_ in (await self.session.execute(text(citing), params)).all():
            new = redact(text_, prints, ERASED)
            if new == text_:
                continue
            await self.session.execute(
                text("UPDATE messages SET content = :c WHERE id = :id"),
                {"c": new, "id": message_id},
            )
            await self.session.execute(
                text(
                    "UPDATE room_events SET data = data || jsonb_build_object('content',"
                    " CAST(:c AS text)) WHERE room_id = :room"
                    " AND type IN ('message.new', 'message.edit') AND data ->> 'id' = :id"
                ),
                {"c": new, "room": room_id, "id": str(message_id)},
            )
            changed += 1
        return changed
