"""The erasure audit: a PII-free record of each erasure, kept for a retention period."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.models import DataSubjectRequest, ErasureAudit


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(
        self, request: DataSubjectRequest, steps: list[dict[str, Any]], retain_days: int
    ) -> None:
        """Idempotent: a retried audit step rewrites the same row."""
        values = {
            "request_id": request.id,
            "subject_ref": request.subject_ref,
            "org_id": request.org_id,
            "requested_via": request.requested_via,
            "requested_by_ref": request.requested_by_ref,
            "requested_at": request.created_at,
            "steps": steps,
            "retain_until": func.now() + timedelta(days=retain_days),
        }
        await self.session.execute(
            pg_insert(ErasureAudit)
            .values(**values)
            .on_conflict_do_update(index_elements=["request_id"], set_={"steps": steps})
        )

    async def seal(
        self,
        request_id: uuid.UUID,
        verification: dict[str, Any],
        receipt: dict[str, Any],
        signature: str,
    ) -> None:
        await self.session.execute(
            update(ErasureAudit)
            .where(ErasureAudit.request_id == request_id)
            .values(
                verification=verification,
                receipt=receipt,
                receipt_signature=signature,
                completed_at=func.now(),
            )
        )

    async def get(self, request_id: uuid.UUID) -> ErasureAudit | None:
        return await self.session.get(ErasureAudit, request_id, populate_existing=True)

    async def purge_expired(self) -> int:
        result = await self.session.execute(
            delete(ErasureAudit).where(ErasureAudit.retain_until < func.now())
        )
        return int(result.rowcount)  # type: ignore[attr-defined]
