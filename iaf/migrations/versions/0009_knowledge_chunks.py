"""knowledge_chunks: each document chunk's text, and ingestion progress on the document

Chunk text used to ride in Qdrant payloads, where a deleted point's bytes stay in segment
files until they are compacted; here deleting the document deletes its chunks (cascade).

Revision ID: 0009_knowledge_chunks
Revises: 0008
Create Date: 2026-12-08 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_knowledge_chunks"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "knowledge_documents",
        sa.Column("chunks_done", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column(
        "knowledge_documents",
        sa.Column("chunks_total", sa.Integer(), server_default="0", nullable=False),
    )
    op.create_table(
        "knowledge_chunks",
        sa.Column("document_id", sa.UUID(), nullable=False),
        sa.Column("chunk", sa.Integer(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["knowledge_documents.id"],
            name=op.f("fk_knowledge_chunks_document_id_knowledge_documents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("document_id", "chunk", name=op.f("pk_knowledge_chunks")),
    )


def downgrade() -> None:
    op.drop_table("knowledge_chunks")
    op.drop_column("knowledge_documents", "chunks_total")
    op.drop_column("knowledge_documents", "chunks_done")
