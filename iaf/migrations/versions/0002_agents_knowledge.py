"""agents: agent runs, knowledge documents, memories; one stored reply per reply id

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 07:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agent_runs",
        sa.Column("reply_id", sa.String(length=120), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("room_id", sa.UUID(), nullable=False),
        sa.Column("agent_id", sa.String(length=64), nullable=False),
        sa.Column("requested_by", sa.UUID(), nullable=True),
        sa.Column("status", sa.String(length=20), server_default="pending", nullable=False),
        sa.Column("reply_message_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "usage",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("depth", sa.Integer(), server_default="0", nullable=False),
        sa.Column("parent_reply_id", sa.String(length=120), nullable=True),
        sa.Column("root_message_id", sa.BigInteger(), nullable=True),
        sa.Column("error", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("context", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_agent_runs_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reply_message_id"],
            ["messages.id"],
            name=op.f("fk_agent_runs_reply_message_id_messages"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"],
            ["users.id"],
            name=op.f("fk_agent_runs_requested_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["room_id"], ["rooms.id"], name=op.f("fk_agent_runs_room_id_rooms"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("reply_id", name=op.f("pk_agent_runs")),
    )
    op.create_index(op.f("ix_agent_runs_message_id"), "agent_runs", ["message_id"], unique=False)
    op.create_index("ix_agent_runs_requested_by", "agent_runs", ["requested_by"], unique=False)
    op.create_index(
        "ix_agent_runs_room_id_created_at", "agent_runs", ["room_id", "created_at"], unique=False
    )
    op.create_index(
        "uq_messages_reply_id",
        "messages",
        [sa.literal_column("(metadata ->> 'reply_id')")],
        unique=True,
        postgresql_where=sa.text("metadata ? 'reply_id'"),
    )

    op.create_table(
        "knowledge_documents",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("org_id", sa.UUID(), nullable=False),
        sa.Column("room_id", sa.UUID(), nullable=True),
        sa.Column("owner_id", sa.UUID(), nullable=False),
        sa.Column("scope", sa.String(length=10), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), server_default="0", nullable=False),
        sa.Column("status", sa.String(length=20), server_default="pending", nullable=False),
        sa.Column("chunk_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("embedding_model", sa.String(length=200), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("indexed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(scope = 'org' AND room_id IS NULL) OR (scope = 'room' AND room_id IS NOT NULL)",
            name=op.f("ck_knowledge_documents_scope_room"),
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["orgs.id"],
            name=op.f("fk_knowledge_documents_org_id_orgs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name=op.f("fk_knowledge_documents_owner_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["room_id"],
            ["rooms.id"],
            name=op.f("fk_knowledge_documents_room_id_rooms"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_documents")),
    )
    op.create_index(
        "ix_knowledge_documents_org_id_created_at",
        "knowledge_documents",
        ["org_id", "created_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_knowledge_documents_owner_id"), "knowledge_documents", ["owner_id"], unique=False
    )
    op.create_index(
        op.f("ix_knowledge_documents_room_id"), "knowledge_documents", ["room_id"], unique=False
    )

    op.create_table(
        "memories",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("org_id", sa.UUID(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="pending", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("indexed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_memories_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_memories_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_memories")),
    )
    op.create_index(
        "ix_memories_user_id_created_at", "memories", ["user_id", "created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_memories_user_id_created_at", table_name="memories")
    op.drop_table("memories")
    op.drop_index(op.f("ix_knowledge_documents_room_id"), table_name="knowledge_documents")
    op.drop_index(op.f("ix_knowledge_documents_owner_id"), table_name="knowledge_documents")
    op.drop_index("ix_knowledge_documents_org_id_created_at", table_name="knowledge_documents")
    op.drop_table("knowledge_documents")
    op.drop_index("uq_messages_reply_id", table_name="messages")
    op.drop_index("ix_agent_runs_room_id_created_at", table_name="agent_runs")
    op.drop_index("ix_agent_runs_requested_by", table_name="agent_runs")
    op.drop_index(op.f("ix_agent_runs_message_id"), table_name="agent_runs")
    op.drop_table("agent_runs")
