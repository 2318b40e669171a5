"""Knowledge from the web: HTTP shapes, and the ID-only payloads of CrawlKnowledge."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.common import SafeStr
from schemas.knowledge import Scope


class SourceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: SafeStr = Field(min_length=8, max_length=2000)
    # page: this URL only; sitemap: the pages a sitemap (or sitemap index) lists.
    mode: Literal["page", "sitemap"] = "page"
    scope: Scope
    room_id: uuid.UUID | None = None
    max_pages: int | None = Field(default=None, ge=1)
    # Crawl again every so often (at least CRAWL_MIN_RECRAWL_MINUTES); none: once.
    recrawl_minutes: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _room_matches_scope(self) -> SourceCreate:
        if self.scope == "room" and self.room_id is None:
            raise ValueError("room_id is required when scope is room")
        if self.scope == "org" and self.room_id is not None:
            raise ValueError("room_id must be omitted when scope is org")
        return self


class SourcePageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    url: str
    status: str
    document_id: uuid.UUID | None
    reason: str | None
    fetched_at: datetime | None


class SourceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    org_id: uuid.UUID
    room_id: uuid.UUID | None
    owner_id: uuid.UUID
    scope: str
    url: str
    mode: str
    max_pages: int
    recrawl_minutes: float | None
    status: str
    pages_stored: int
    pages_skipped: int
    crawls: int
    error: str | None
    last_crawled_at: datetime | None
    next_crawl_at: datetime | None
    created_at: datetime
    pages: list[SourcePageOut] | None = None


class CrawlInput(BaseModel):
    source_id: uuid.UUID


class CrawlPlan(BaseModel):
    """What a crawl round does: `page_ids` to fetch (rows of knowledge_source_pages)."""

    status: Literal["crawl", "gone"]
    crawl: int = 0
    page_ids: list[int] = Field(default_factory=list)
    delay_seconds: float = 0.0
    recrawl_seconds: float | None = None


class PageRef(BaseModel):
    source_id: uuid.UUID
    page_id: int
    crawl: int


class PageOutcome(BaseModel):
    status: Literal["stored", "unchanged", "skipped"]


class CrawlRound(BaseModel):
    source_id: uuid.UUID
    crawl: int
    failed: bool = False


class CrawlSummary(BaseModel):
    status: str
    stored: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
