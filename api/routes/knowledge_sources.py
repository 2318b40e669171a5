"""Knowledge from the web: add a page or a sitemap (crawled by CrawlKnowledge, re-crawled on
its interval), follow it, crawl it again now, delete it with its documents."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Query, Response

from api.deps import CurrentUser, SessionDep, StateDep
from iaf.crawl import service
from iaf.db.repositories.knowledge_sources import KnowledgeSourceRepository
from iaf.rooms.service import room_for_member
from iaf.workflow_calls import best_effort, start_crawl, start_vector_job, stop_crawl
from schemas.crawl import SourceCreate, SourceOut, SourcePageOut

router = APIRouter(prefix="/api/knowledge/sources", tags=["knowledge"])


@router.post("", status_code=202)
async def create_source(
    body: SourceCreate, user: CurrentUser, session: SessionDep, state: StateDep, response: Response
) -> SourceOut:
    settings = state.settings
    await state.limiter.hit(
        f"crawl:{user.id}", settings.crawl_sources_per_hour, 3600, response, session
    )
    source = await service.create_source(session, settings, user, body)
    await session.commit()
    await best_effort(
        f"CrawlKnowledge for {source.id}",
        start_crawl(state.temporal, settings, source.id, user.id, source.room_id),
    )
    return SourceOut.model_validate(source, from_attributes=True)


@router.get("")
async def list_sources(
    user: CurrentUser, session: SessionDep, room_id: uuid.UUID | None = Query(default=None)
) -> dict[str, list[SourceOut]]:
    if room_id is not None:
        await room_for_member(session, room_id, user)
    sources = await KnowledgeSourceRepository(session).list_visible(user.org_id, user.id, room_id)
    return {"items": [SourceOut.model_validate(s, from_attributes=True) for s in sources]}


@router.get("/{source_id}")
async def get_source(source_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> SourceOut:
    """The source with its pages: what each crawl stored, left unchanged or skipped, and why."""
    source = await service.visible_source(session, source_id, user)
    pages = await KnowledgeSourceRepository(session).pages(source.id)
    out = SourceOut.model_validate(source, from_attributes=True)
    out.pages = [SourcePageOut.model_validate(p, from_attributes=True) for p in pages]
    return out


@router.post("/{source_id}/crawl", status_code=202)
async def crawl_now(
    source_id: uuid.UUID, user: CurrentUser, session: SessionDep, state: StateDep
) -> SourceOut:
    source = await service.visible_source(session, source_id, user)
    await service.ensure_may_manage(session, source, user)
    await start_crawl(state.temporal, state.settings, source.id, source.owner_id, source.room_id)
    return SourceOut.model_validate(source, from_attributes=True)


@router.delete("/{source_id}", status_code=204)
async def delete_source(
    source_id: uuid.UUID, user: CurrentUser, session: SessionDep, state: StateDep
) -> Response:
    source = await service.visible_source(session, source_id, user)
    await service.ensure_may_manage(session, source, user)
    owner, room = source.owner_id, source.room_id
    documents = await service.delete_source(session, source)
    await session.commit()
    await stop_crawl(state.temporal, source_id)
    for document_id in documents:
        await best_effort(
            f"RemoveVectors for {document_id}",
            start_vector_job(
                state.temporal,
                state.settings,
                "document",
                document_id,
                owner,
                removal=True,
                room_id=room,
            ),
        )
    return Response(status_code=204)
