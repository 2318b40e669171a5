"""Knowledge documents agents retrieve from: organisation-wide or for one room.

Any org member may add an org document; room documents need room membership. The API
stores the document and starts IngestKnowledge (`ingest-{id}`); clients poll the status.
Deleting marks the document "deleting" (agents stop using it at once) and starts
RemoveVectors, which deletes its points and then the row. An uploaded .md, .txt or .pdf file
becomes a document the same way, its text extracted here (PDF with pypdf, off the event loop).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Query, Response, UploadFile
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import CurrentUser, SessionDep, StateDep
from iaf.db.models import KnowledgeDocument, User
from iaf.db.repositories.knowledge import KnowledgeRepository
from iaf.db.repositories.rooms import RoomRepository
from iaf.errors import ApiError
from iaf.gdpr.service import remove_archives
from iaf.knowledge_files import extract
from iaf.knowledge_removal import forget_document
from iaf.rooms.service import ensure_writable, room_for_member
from iaf.workflow_calls import best_effort, start_vector_job
from schemas.knowledge import DocumentCreate, DocumentList, DocumentOut

router = APIRouter(prefix="/api/knowledge", tags=["knowledge"])


@router.post("/documents", status_code=202)
async def create_document(
    body: DocumentCreate,
    user: CurrentUser,
    session: SessionDep,
    state: StateDep,
    response: Response,
) -> DocumentOut:
    settings = state.settings
    if not body.content.strip():
        raise ApiError(422, "empty_content", "content must not be empty")
    size = len(body.content.encode())
    if size > settings.knowledge_max_bytes:
        raise ApiError(
            413,
            "content_too_large",
            f"content is {size} bytes; the limit is {settings.knowledge_max_bytes}",
        )
    org_id = user.org_id
    if body.scope == "room":
        assert body.room_id is not None
        room, _ = await room_for_member(session, body.room_id, user)
        ensure_writable(room)
        org_id = room.org_id  # a room's documents belong to the organisation that owns it
    await state.limiter.hit(
        f"knowledge:{user.id}", settings.knowledge_uploads_per_hour, 3600, response, session
    )
    document = await KnowledgeRepository(session).create(
        org_id, user.id, body.scope, body.room_id, body.title.strip(), body.content
    )
    await session.commit()
    await _start_job(state, document, removal=False)
    return DocumentOut.model_validate(document, from_attributes=True)


async def _read_capped(upload: UploadFile, limit: int) -> bytes:
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise ApiError(413, "file_too_large", f"the file is over {limit} bytes")
    return data


@router.post("/documents/upload", status_code=202)
async def upload_document(
    file: Annotated[UploadFile, File(description="a .md, .txt or .pdf file")],
    scope: Annotated[Literal["org", "room"], Form()],
    user: CurrentUser,
    session: SessionDep,
    state: StateDep,
    response: Response,
    room_id: Annotated[uuid.UUID | None, Form()] = None,
    title: Annotated[str | None, Form(max_length=200)] = None,
) -> DocumentOut:
    data = await _read_capped(file, state.settings.knowledge_file_max_bytes)
    extracted = await asyncio.to_thread(extract, file.filename or "", data)
    try:
        body = DocumentCreate(
            title=(title or "").strip() or extracted.title,
            content=extracted.text,
            scope=scope,
            room_id=room_id,
        )
    except ValueError as exc:
        raise ApiError(422, "invalid_request", str(exc).splitlines()[0]) from None
    return await create_document(body, user, session, state, response)


@router.get("/documents")
async def list_documents(
    user: CurrentUser,
    session: SessionDep,
    room_id: uuid.UUID | None = Query(default=None),
    limit: int = Query(default=50, ge=1, le=200),
    offset: int = Query(default=0, ge=0, le=100_000),
) -> DocumentList:
    if room_id is not None:
        await room_for_member(session, room_id, user)
    items = await KnowledgeRepository(session).list_visible(
        user.org_id, user.id, room_id, limit, offset
    )
    return DocumentList(
        items=[DocumentOut.model_validate(d, from_attributes=True) for d in items],
        next_offset=offset + limit if len(items) == limit else None,
    )


async def visible_document(
    session: AsyncSession, document_id: uuid.UUID, user: User, *, for_update: bool = False
) -> KnowledgeDocument:
    """The document if the caller may read it; 404 otherwise (ids reveal nothing)."""
    document = await KnowledgeRepository(session).get(document_id, for_update=for_update)
    if document is not None:
        if document.scope == "org" and document.org_id == user.org_id:
            return document
        if document.room_id is not None and await RoomRepository(session).get_for_member(
            document.room_id, user.id
        ):
            return document
    raise ApiError(404, "document_not_found", "document not found")


@router.get("/documents/{document_id}")
async def get_document(
    document_id: uuid.UUID, user: CurrentUser, session: SessionDep
) -> DocumentOut:
    return DocumentOut.model_validate(
        await visible_document(session, document_id, user),
        from_attributes=True,
        context={"with_content": True},
    )


@router.delete("/documents/{document_id}", status_code=202)
async def delete_document(
    document_id: uuid.UUID, user: CurrentUser, session: SessionDep, state: StateDep
) -> DocumentOut:
    document = await visible_document(session, document_id, user, for_update=True)
    await _ensure_may_manage(session, document, user)
    stale: list[str] = []
    if document.status != "deleting":
        await KnowledgeRepository(session).set_status(document.id, "deleting")
        # Replies that quoted it lose the quotes now (and the owner's archives holding it
        # go); RemoveVectors deletes its points and its row.
        stale = await forget_document(session, document)
        await session.refresh(document)
    await session.commit()
    remove_archives(state.settings, stale)
    await _start_job(state, document, removal=True)
    return DocumentOut.model_validate(document, from_attributes=True)


@router.post("/documents/{document_id}/retry", status_code=202)
async def retry_document(
    document_id: uuid.UUID, user: CurrentUser, session: SessionDep, state: StateDep
) -> DocumentOut:
    """Ingest a document again after its ingestion failed (the owner or an admin)."""
    document = await visible_document(session, document_id, user, for_update=True)
    await _ensure_may_manage(session, document, user)
    if document.status != "failed":
        raise ApiError(
            409, "not_failed", f"only a failed document is retried; it is {document.status}"
        )
    await KnowledgeRepository(session).set_status(document.id, "pending", error=None)
    await session.refresh(document)
    await session.commit()
    await _start_job(state, document, removal=False)
    return DocumentOut.model_validate(document, from_attributes=True)


async def _start_job(state: StateDep, document: KnowledgeDocument, *, removal: bool) -> None:
    """IngestKnowledge or RemoveVectors; when Temporal is away, the worker resumes it later."""
    label = "RemoveVectors" if removal else "IngestKnowledge"
    await best_effort(
        f"{label} for {document.id}",
        start_vector_job(
            state.temporal,
            state.settings,
            "document",
            document.id,
            document.owner_id,
            removal=removal,
            room_id=document.room_id,
        ),
    )


async def _ensure_may_manage(
    session: AsyncSession, document: KnowledgeDocument, user: User
) -> None:
    """The owner, an org admin for org documents, a room owner or admin for room documents."""
    if document.owner_id == user.id:
        return
    if document.scope == "org" and user.role == "org_admin" and document.org_id == user.org_id:
        return
    if document.room_id is not None:
        found = await RoomRepository(session).get_for_member(document.room_id, user.id)
        if found is not None and found[1] in ("owner", "admin"):
            return
    raise ApiError(403, "forbidden", "only the owner or an admin may manage this document")
