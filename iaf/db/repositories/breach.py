"""Who a personal data breach in a time window may concern (Art. 33(3)(a), 34): read-only."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# Records each person had written in the window, by kind (to size the breach per person).
_RECORDS_IN_WINDOW = {
    "messages": "SELECT count(*) FROM messages m WHERE m.sender_user_id = u.id"
    " AND m.created_at >= :since AND m.created_at < :until",
    "knowledge_documents": "SELECT count(*) FROM knowledge_documents d WHERE d.owner_id = u.id"
    " AND d.created_at >= :since AND d.created_at < :until",
    "memories": "SELECT count(*) FROM memories r WHERE r.user_id = u.id"
    " AND r.created_at >= :since AND r.created_at < :until",
    "attachments": "SELECT count(*) FROM attachments f WHERE f.uploader_id = u.id"
    " AND f.created_at >= :since AND f.created_at < :until",
}


class BreachRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def people(
        self,
        org_id: uuid.UUID,
        since: datetime,
        until: datetime,
    ) -> list[dict[str, Any]]:
        """Every account of the organisation that existed during the window (its data was
        held then), with the records it wrote in the window."""
        kinds = _RECORDS_IN_WINDOW
        counts = ", ".join(f"({sql}) AS {name}" for name, sql in kinds.items())
        rows = await self.session.execute(
            text(
                f"SELECT u.id, u.email, u.status, u.created_at, {counts} FROM users u"
                " WHERE u.org_id = :org_id AND u.created_at < :until ORDER BY u.created_at, u.id"
            ),
            {"org_id": org_id, "since": since, "until": until},
        )
        return [
            {
                "user_id": row.id,
                "email": row.email,
                "status": row.status,
                "account_created_at": row.created_at,
                "records_in_window": {name: int(getattr(row, name)) for name in kinds},
            }
            for row in rows
        ]

    async def erased_since(
        self, org_id: uuid.UUID, since: datetime, until: datetime
    ) -> list[dict[str, Any]]:
        """People erased after the window began whose request predates its end: their data
        was held in the window; only the pseudonymous audit record is left of them."""
        rows = await self.session.execute(
            text(
                "SELECT subject_ref, requested_at, completed_at FROM erasure_audit"
                " WHERE org_id = :org_id AND requested_at < :until"
                " AND (completed_at IS NULL OR completed_at >= :since) ORDER BY requested_at"
            ),
            {"org_id": org_id, "since": since, "until": until},
        )
        return [
            {
                "subject_ref": r.subject_ref,
                "requested_at": r.requested_at,
                "erased_at": r.completed_at,
            }
            for r in rows
        ]
