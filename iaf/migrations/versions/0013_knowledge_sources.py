"""Knowledge from the web: sources (a page or a sitemap) and the pages each crawl found

Revision ID: 0013_knowledge_sources
Revises: 0012_attachments
Create Date: 2026-12-04 23:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013_knowledge_sources"
down_revision: str | Sequence[str] | None = "0012_attachments"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    uuid = postgresql.UUID(as_uuid=True)
    now = sa.func.now()
    op.create_table(
        "knowledge_sources",
        sa.Column("id", uuid, nullable=False),
        sa.Column("org_id", uuid, nullable=False),
        sa.Column("room_id", uuid, nullable=True),
        sa.Column("owner_id", uuid, nullable=False),
        sa.Column("scope", sa.String(10), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("mode", sa.String(10), nullable=False),
        sa.Column("max_pages", sa.Integer(), nullable=False),
        sa.Column("recrawl_minutes", sa.Float(), nullable=True),
        sa.Column("status", sa.String(20), server_default="pending", nullable=False),
        sa.Column("robots_txt", sa.Text(), nullable=True),
        sa.Column("crawl_delay_seconds", sa.Float(), server_default="0", nullable=False),
        sa.Column("pages_stored", sa.Integer(), server_default="0", nullable=False),
        sa.Column("pages_skipped", sa.Integer(), server_default="0", nullable=False),
        sa.Column("crawls", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("last_crawled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_crawl_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name="fk_knowledge_sources_org_id_orgs", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["room_id"], ["rooms.id"], name="fk_knowledge_sources_room_id_rooms", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name="fk_knowledge_sources_owner_id_users",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_knowledge_sources"),
    )
    for column in ("org_id", "room_id", "owner_id"):
        op.create_index(f"ix_knowledge_sources_{column}", "knowledge_sources", [column])
    op.create_table(
        "knowledge_source_pages",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("source_id", uuid, nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), server_default="pending", nullable=False),
        sa.Column("document_id", uuid, nullable=True),
        sa.Column("content_sha256", sa.String(64), nullable=True),
        sa.Column("reason", sa.String(200), nullable=True),
        sa.Column("crawl", sa.Integer(), server_default="0", nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=now, nullable=False),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["knowledge_sources.id"],
            name="fk_knowledge_source_pages_source_id_knowledge_sources",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["knowledge_documents.id"],
            name="fk_knowledge_source_pages_document_id_knowledge_documents",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_knowledge_source_pages"),
        sa.UniqueConstraint("source_id", "url", name="uq_knowledge_source_pages_source_id_url"),
    )
    op.create_index(
        "ix_knowledge_source_pages_document_id", "knowledge_source_pages", ["document_id"]
    )


def downgrade() -> None:
    op.drop_table("knowledge_source_pages")
    op.drop_table("knowledge_sources")
