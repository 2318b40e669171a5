"""Attachments over HTTP."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from schemas.knowledge import DocumentOut


class AttachmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    room_id: uuid.UUID | None
    message_id: int | None
    name: str
    content_type: str
    kind: str
    size_bytes: int
    width: int | None = None
    height: int | None = None
    knowledge_document_id: uuid.UUID | None = None
    created_at: datetime


class AttachmentKnowledgeOut(BaseModel):
    attachment: AttachmentOut
    document: DocumentOut
