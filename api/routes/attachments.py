"""Files in rooms: upload (multipart), read, discard before posting, add to the room's
knowledge. Posting one is `attachment_ids` on POST /api/chat/rooms/{id}/messages."""

from __future__ import annotations

import uuid
from urllib.parse import quote

from fastapi import APIRouter, File, Response, UploadFile
from fastapi.responses import Response as RawResponse

from api.deps import CurrentUser, SessionDep, StateDep
from iaf.errors import ApiError
from iaf.files import service
from iaf.workflow_calls import best_effort, start_vector_job
from schemas.files import AttachmentKnowledgeOut, AttachmentOut
from schemas.knowledge import DocumentOut

router = APIRouter(prefix="/api/chat", tags=["attachments"])


@router.post("/rooms/{room_id}/attachments", status_code=201)
async def upload_attachment(
    room_id: uuid.UUID,
    user: CurrentUser,
    session: SessionDep,
    state: StateDep,
    response: Response,
    file: UploadFile = File(...),
) -> AttachmentOut:
    """The type is judged from the bytes (images, PDF, UTF-8 text); the name is kept for show."""
    settings = state.settings
    data = await file.read(settings.attachment_max_bytes + 1)
    if len(data) > settings.attachment_max_bytes:
        raise ApiError(
            413, "file_too_large", f"a file is at most {settings.attachment_max_bytes} bytes"
        )
    await state.limiter.hit(
        f"attachments:{user.id}", settings.attachment_uploads_per_hour, 3600, response, session
    )
    attachment = await service.upload(
        session, settings, state.files, user, room_id, file.filename or "file", data
    )
    await session.commit()
    return AttachmentOut.model_validate(attachment, from_attributes=True)


@router.get("/attachments/{attachment_id}", response_model=None)
async def download_attachment(
    attachment_id: uuid.UUID, user: CurrentUser, session: SessionDep, state: StateDep
) -> RawResponse:
    """Images inline, everything else as a download; never sniffed again by the browser."""
    attachment = await service.readable(session, attachment_id, user)
    data = await service.content(state.files, attachment)
    disposition = "inline" if attachment.kind == "image" else "attachment"
    return RawResponse(
        data,
        media_type=attachment.content_type,
        headers={
            "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(attachment.name)}",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, max-age=3600",
        },
    )


@router.get("/attachments/{attachment_id}/info")
async def attachment_info(
    attachment_id: uuid.UUID, user: CurrentUser, session: SessionDep
) -> AttachmentOut:
    attachment = await service.readable(session, attachment_id, user)
    return AttachmentOut.model_validate(attachment, from_attributes=True)


@router.delete("/attachments/{attachment_id}", status_code=204)
async def discard_attachment(
    attachment_id: uuid.UUID, user: CurrentUser, session: SessionDep, state: StateDep
) -> Response:
    """An upload not posted yet; a posted file goes when its message is deleted."""
    attachment = await service.readable(session, attachment_id, user)
    await service.discard_unposted(session, attachment, user)
    await session.commit()
    await service.remove_withdrawn(session, state.files, [attachment.id])
    return Response(status_code=204)


@router.post("/attachments/{attachment_id}/knowledge", status_code=202)
async def attachment_to_knowledge(
    attachment_id: uuid.UUID,
    user: CurrentUser,
    session: SessionDep,
    state: StateDep,
    response: Response,
) -> AttachmentKnowledgeOut:
    """One call: a posted text or PDF file becomes a room document, ingested like any other."""
    attachment = await service.readable(session, attachment_id, user)
    await state.limiter.hit(
        f"knowledge:{user.id}", state.settings.knowledge_uploads_per_hour, 3600, response, session
    )
    document = await service.add_to_knowledge(
        session, state.settings, state.files, user, attachment
    )
    await session.commit()
    await best_effort(
        f"IngestKnowledge for {document.id}",
        start_vector_job(
            state.temporal,
            state.settings,
            "document",
            document.id,
            user.id,
            room_id=document.room_id,
        ),
    )
    return AttachmentKnowledgeOut(
        attachment=AttachmentOut.model_validate(attachment, from_attributes=True),
        document=DocumentOut.model_validate(document, from_attributes=True),
    )
