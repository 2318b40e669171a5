"""Knowledge sources: who may add, see and remove one; what a crawl may reach.

No host may be crawled until the operator lists it (CRAWL_ALLOWED_HOSTS): with none, adding
a source is a 403 that says so; a host not listed is a 422 naming it. Nothing here commits.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from iaf.crawl.web import host_allowed
from iaf.db.models import KnowledgeSource, User
from iaf.db.repositories.knowledge import KnowledgeRepository
from iaf.db.repositories.knowledge_sources import KnowledgeSourceRepository
from iaf.db.repositories.rooms import RoomRepository
from iaf.errors import ApiError
from iaf.rooms.service import ensure_writable, room_for_member
from iaf.settings import Settings
from schemas.crawl import SourceCreate


def _check_url(url: str, settings: Settings) -> str:
    if not settings.crawl_allowed_hosts:
        raise ApiError(
            403,
            "crawl_disabled",
            "no web host may be crawled on this instance (the operator sets CRAWL_ALLOWED_HOSTS)",
        )
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ApiError(422, "invalid_url", "give an http(s) URL")
    if not host_allowed(url.strip(), settings):
        raise ApiError(
            422,
            "host_not_allowed",
            f"{parts.hostname[:100]} is not among the hosts this instance may crawl",
        )
    return url.strip()


async def create_source(
    session: AsyncSession, settings: Settings, user: User, body: SourceCreate
) -> KnowledgeSource:
    org_id = user.org_id
    # Who may before what: a stranger to the room learns nothing of this instance's URL rules.
    if body.room_id is not None:
        room, _ = await room_for_member(session, body.room_id, user)
        ensure_writable(room)
        org_id = room.org_id
    url = _check_url(body.url, settings)
    max_pages = body.max_pages or settings.crawl_max_pages
    if max_pages > settings.crawl_max_pages:
        raise ApiError(
            422, "too_many_pages", f"a source has at most {settings.crawl_max_pages} pages"
        )
    if (
        body.recrawl_minutes is not None
        and body.recrawl_minutes < settings.crawl_min_recrawl_minutes
    ):
        raise ApiError(
            422,
            "recrawl_too_often",
            f"re-crawl at most every {settings.crawl_min_recrawl_minutes:g} minutes",
        )
    return await KnowledgeSourceRepository(session).create(
        KnowledgeSource(
            org_id=org_id,
            room_id=body.room_id,
            owner_id=user.id,
            scope=body.scope,
            url=url,
            mode=body.mode,
            max_pages=max_pages,
            recrawl_minutes=body.recrawl_minutes,
            status="pending",
        )
    )


async def visible_source(
    session: AsyncSession, source_id: uuid.UUID, user: User
) -> KnowledgeSource:
    """The source if the caller may read it (as its documents); 404 otherwise."""
    source = await KnowledgeSourceRepository(session).get(source_id)
    if source is not None:
        if source.scope == "org" and source.org_id == user.org_id:
            return source
        if source.room_id is not None and await RoomRepository(session).get_for_member(
            source.room_id, user.id
        ):
            return source
    raise ApiError(404, "source_not_found", "knowledge source not found")


async def ensure_may_manage(session: AsyncSession, source: KnowledgeSource, user: User) -> None:
    """The owner, an org admin for org sources, a room owner or admin for room sources."""
    if source.owner_id == user.id:
        return
    if source.scope == "org" and user.role == "org_admin" and source.org_id == user.org_id:
        return
    if source.room_id is not None:
        found = await RoomRepository(session).get_for_member(source.room_id, user.id)
        if found is not None and found[1] in ("owner", "admin"):
            return
    raise ApiError(403, "forbidden", "only the owner or an admin may manage this source")


async def delete_source(session: AsyncSession, source: KnowledgeSource) -> list[uuid.UUID]:
    """The source and its page rows go; its documents are marked deleting (agents stop using
    them at once). Returns their ids, for the caller to start their removal."""
    sources, documents = KnowledgeSourceRepository(session), KnowledgeRepository(session)
    ids = await sources.document_ids(source.id)
    for document_id in ids:
        await documents.set_status(document_id, "deleting")
    await sources.delete(source.id)
    return ids
