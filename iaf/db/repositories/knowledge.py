"""Knowledge documents: what the API stores and the IngestKnowledge workflow indexes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.models import KnowledgeDocument, RoomMember


class KnowledgeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(
        self,
        org_id: uuid.UUID,
        owner_id: uuid.UUID,
        scope: str,
        room_id: uuid.UUID | None,
        title: str,
        content: str,
    ) -> KnowledgeDocument:
        document = KnowledgeDocument(
            org_id=org_id,
            owner_id=owner_id,
            scope=scope,
            room_id=room_id,
            title=title,
            content=content,
            size_bytes=len(content.encode()),
            status="pending",
            chunk_count=0,
        )
        self.session.add(document)
        await self.session.flush()
        await self.session.refresh(document)
        return document

    async def get(
        self, document_id: uuid.UUID, *, for_update: bool = False
    ) -> KnowledgeDocument | None:
        query = select(KnowledgeDocument).where(KnowledgeDocument.id == document_id)
        if for_update:
            query = query.with_for_update()
        return await self.session.scalar(query.execution_options(populate_existing=True))

    async def list_visible(
        self,
        org_id: uuid.UUID,
        user_id: uuid.UUID,
        room_id: uuid.UUID | None,
        limit: int,
        offset: int,
    ) -> list[KnowledgeDocument]:
        """Org-wide documents of the user's org and documents of rooms the user belongs to."""
        my_rooms = select(RoomMember.room_id).where(RoomMember.user_id == user_id)
        query = select(KnowledgeDocument).where(
            or_(
                (KnowledgeDocument.scope == "org") & (KnowledgeDocument.org_id == org_id),
                (KnowledgeDocument.scope == "room") & KnowledgeDocument.room_id.in_(my_rooms),
            )
        )
        if room_id is not None:
            query = query.where(KnowledgeDocument.room_id == room_id)
        rows = await self.session.scalars(
            query.order_by(KnowledgeDocument.created_at.desc(), KnowledgeDocument.id)
            .limit(limit)
            .offset(offset)
        )
        return list(rows)

    async def set_status(self, document_id: uuid.UUID, status: str, **values: object) -> None:
        await self.session.execute(
            update(KnowledgeDocument)
            .where(KnowledgeDocument.id == document_id)
            .values(status=status, updated_at=func.now(), **values)
        )

    async def delete(self, document_id: uuid.UUID) -> None:
        await self.session.execute(
            delete(KnowledgeDocument).where(KnowledgeDocument.id == document_id)
        )

    async def stale(self, older_than_seconds: float) -> list[KnowledgeDocument]:
        """Pending or deleting documents whose workflow may never have started (Temporal away)."""
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than_seconds)
        rows = await self.session.scalars(
            select(KnowledgeDocument)
            .where(
                KnowledgeDocument.status.in_(("pending", "deleting")),
                KnowledgeDocument.updated_at < cutoff,
            )
            .limit(200)
        )
        return list(rows)
