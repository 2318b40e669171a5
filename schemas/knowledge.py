"""Knowledge documents and memories: HTTP shapes, and the ID-only workflow payloads."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from schemas.common import NameStr, SafeStr

Scope = Literal["org", "room"]


class DocumentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: NameStr = Field(min_length=1, max_length=200)
    # Size is checked in bytes by the route (413 with a clear code).
    content: SafeStr
    scope: Scope
    room_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _room_matches_scope(self) -> DocumentCreate:
        if self.scope == "room" and self.room_id is None:
            raise ValueError("room_id is required when scope is room")
        if self.scope == "org" and self.room_id is not None:
            raise ValueError("room_id must be omitted when scope is org")
        return self


class DocumentOut(BaseModel):
    id: uuid.UUID
    org_id: uuid.UUID
    room_id: uuid.UUID | None
    owner_id: uuid.UUID
    scope: str
    title: str
    size_bytes: int
    status: str
    chunk_count: int
    # Ingestion progress: chunks embedded and stored so far, of chunks_total.
    chunks_done: int = 0
    chunks_total: int = 0
    error: str | None = None
    created_at: datetime
    updated_at: datetime
    indexed_at: datetime | None = None
    # The text only where asked for: model_validate(..., context={"with_content": True}).
    content: str | None = None

    @field_validator("content")
    @classmethod
    def _content_when_asked(cls, value: str | None, info: ValidationInfo) -> str | None:
        return value if (info.context or {}).get("with_content") else None


class DocumentList(BaseModel):
    items: list[DocumentOut]
    next_offset: int | None = None


class MemoryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: SafeStr


class MemoryOut(BaseModel):
    id: uuid.UUID
    content: str
    status: str
    created_at: datetime
    indexed_at: datetime | None = None


class MemoryList(BaseModel):
    items: list[MemoryOut]
    next_offset: int | None = None


# --- workflow and activity payloads (IDs only) ----------------------------------------------


class DocumentRef(BaseModel):
    document_id: uuid.UUID


class MemoryRef(BaseModel):
    memory_id: uuid.UUID


# "room": every document point of a deleted room (its rows went with it).
VectorKind = Literal["document", "memory", "room"]


class RemoveVectorsInput(BaseModel):
    kind: VectorKind
    item_id: uuid.UUID


class VectorJob(BaseModel):
    """Input of IngestKnowledge, IndexMemory and RemoveVectors: which item, which queue.

    The retrieval task queue travels with the job because workflow code cannot read
    settings; it is a deployment name, not personal data.
    """

    kind: VectorKind
    item_id: uuid.UUID
    retrieval_task_queue: str


class IngestResult(BaseModel):
    status: str
    chunks: int = 0


class IndexResult(BaseModel):
    status: str


class IndexFailure(BaseModel):
    item_id: uuid.UUID
    # An exception type name: no content (it is stored in workflow history).
    reason: str
