"""POST /api/knowledge/documents/upload: a .md, .txt or .pdf file becomes a knowledge document.

The file's text is extracted here (PDF with pypdf, off the event loop) and then stored and
ingested exactly as pasted text is (`create_document`: same limits, scope checks and
IngestKnowledge workflow).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Response, UploadFile

from api.deps import CurrentUser, SessionDep, StateDep
from api.routes.knowledge import create_document
from iaf.errors import ApiError
from iaf.knowledge_files import extract
from schemas.knowledge import DocumentCreate, DocumentOut

router = APIRouter(prefix="/api/knowledge", tags=["knowledge"])


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
