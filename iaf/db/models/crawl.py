"""Knowledge from the web: a source (one page or a sitemap) and the pages a crawl found.

Each stored page is an ordinary knowledge document (status, ingestion, deletion as any other);
these rows say where it came from, so a re-crawl replaces exactly the pages that changed.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from iaf.db.models.base import Base, created_at_column, uuid_pk


class KnowledgeSource(Base):
    __tablename__ = "knowledge_sources"

    id: Mapped[uuid.UUID] = uuid_pk()
    org_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("orgs.id", ondelete="CASCADE"), index=True
    )
    room_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("rooms.id", ondelete="CASCADE"), index=True
    )
    owner_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    # org | room
    scope: Mapped[str] = mapped_column(String(10))
    url: Mapped[str] = mapped_column(Text)
    # page | sitemap
    mode: Mapped[str] = mapped_column(String(10))
    max_pages: Mapped[int] = mapped_column(Integer)
    # None: crawled once.
    recrawl_minutes: Mapped[float | None] = mapped_column(Float)
    # pending | crawling | ready | failed
    status: Mapped[str] = mapped_column(String(20), server_default="pending")
    # The host's robots.txt as last fetched (None: it had none), read by each page's fetch.
    robots_txt: Mapped[str | None] = mapped_column(Text)
    crawl_delay_seconds: Mapped[float] = mapped_column(Float, server_default="0")
    pages_stored: Mapped[int] = mapped_column(Integer, server_default="0")
    pages_skipped: Mapped[int] = mapped_column(Integer, server_default="0")
    crawls: Mapped[int] = mapped_column(Integer, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)
    last_crawled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    next_crawl_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()


class KnowledgeSourcePage(Base):
    __tablename__ = "knowledge_source_pages"
    __table_args__ = (UniqueConstraint("source_id", "url"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    source_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("knowledge_sources.id", ondelete="CASCADE")
    )
    url: Mapped[str] = mapped_column(Text)
    # pending | stored | unchanged | skipped | failed
    status: Mapped[str] = mapped_column(String(20), server_default="pending")
    document_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("knowledge_documents.id", ondelete="SET NULL"), index=True
    )
    content_sha256: Mapped[str | None] = mapped_column(String(64))
    # Why a page was skipped or failed: robots.txt, host, type, size, HTTP status.
    reason: Mapped[str | None] = mapped_column(String(200))
    crawl: Mapped[int] = mapped_column(Integer, server_default="0")
    fetched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()
