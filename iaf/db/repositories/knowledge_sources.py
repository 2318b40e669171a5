"""Knowledge sources (web pages, sitemaps) and the pages their crawls found."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from iaf.db.models import KnowledgeSource, KnowledgeSourcePage, RoomMember


class KnowledgeSourceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(self, source: KnowledgeSource) -> KnowledgeSource:
        self.session.add(source)
        await self.session.flush()
        await self.session.refresh(source)
        return source

    async def get(
        self, source_id: uuid.UUID, *, for_update: bool = False
    ) -> KnowledgeSource | None:
        query = select(KnowledgeSource).where(KnowledgeSource.id == source_id)
        if for_update:
            query = query.with_for_update()
        return await self.session.scalar(query.execution_options(populate_existing=True))

    async def list_visible(
        self, org_id: uuid.UUID, user_id: uuid.UUID, room_id: uuid.UUID | None
    ) -> list[KnowledgeSource]:
        my_rooms = select(RoomMember.room_id).where(RoomMember.user_id == user_id)
        query = select(KnowledgeSource).where(
            or_(
                (KnowledgeSource.scope == "org") & (KnowledgeSource.org_id == org_id),
                (KnowledgeSource.scope == "room") & KnowledgeSource.room_id.in_(my_rooms),
            )
        )
        if room_id is not None:
            query = query.where(KnowledgeSource.room_id == room_id)
        rows = await self.session.scalars(query.order_by(KnowledgeSource.created_at.desc()))
        return list(rows)

    async def update(self, source_id: uuid.UUID, **values: Any) -> None:
        await self.session.execute(
            update(KnowledgeSource)
            .where(KnowledgeSource.id == source_id)
            .values(updated_at=func.now(), **values)
        )

    async def delete(self, source_id: uuid.UUID) -> None:
        source = await self.get(source_id)
        if source is not None:
            await self.session.delete(source)
            await self.session.flush()

    async def pages(self, source_id: uuid.UUID) -> list[KnowledgeSourcePage]:
        rows = await self.session.scalars(
            select(KnowledgeSourcePage)
            .where(KnowledgeSourcePage.source_id == source_id)
            .order_by(KnowledgeSourcePage.id)
        )
        return list(rows)

    async def page(self, page_id: int) -> KnowledgeSourcePage | None:
        return await self.session.get(KnowledgeSourcePage, page_id, populate_existing=True)

    async def plan_pages(self, source_id: uuid.UUID, urls: list[str], crawl: int) -> list[int]:
        """The pages of this crawl, in order: known ones are kept (with their document), new
        ones added; pages no longer listed keep their row but are not fetched again."""
        ids: list[int] = []
        for url in dict.fromkeys(urls):
            upsert = (
                pg_insert(KnowledgeSourcePage)
                .values(source_id=source_id, url=url, status="pending", crawl=crawl)
                .on_conflict_do_update(
                    index_elements=["source_id", "url"], set_={"crawl": crawl, "status": "pending"}
                )
                .returning(KnowledgeSourcePage.id)
            )
            ids.append(int((await self.session.execute(upsert)).scalar_one()))
        return ids

    async def set_page(self, page_id: int, **values: Any) -> None:
        await self.session.execute(
            update(KnowledgeSourcePage)
            .where(KnowledgeSourcePage.id == page_id)
            .values(fetched_at=datetime.now(UTC), **values)
        )

    async def tally(self, source_id: uuid.UUID, crawl: int) -> dict[str, int]:
        rows = await self.session.execute(
            select(KnowledgeSourcePage.status, func.count())
            .where(KnowledgeSourcePage.source_id == source_id, KnowledgeSourcePage.crawl == crawl)
            .group_by(KnowledgeSourcePage.status)
        )
        return {str(r[0]): int(r[1]) for r in rows.all()}

    async def document_ids(self, source_id: uuid.UUID) -> list[uuid.UUID]:
        rows = await self.session.scalars(
            select(KnowledgeSourcePage.document_id).where(
                KnowledgeSourcePage.source_id == source_id,
                KnowledgeSourcePage.document_id.is_not(None),
            )
        )
        return [r for r in rows if r is not None]

    @staticmethod
    def next_crawl(minutes: float | None) -> datetime | None:
        return datetime.now(UTC) + timedelta(minutes=minutes) if minutes else None
