"""openai_sessions: conversations of the OpenAI-compatible API, one private room each

Revision ID: 0005
Revises: 0001
Create Date: 2026-11-24 08:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "openai_sessions",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("agent_id", sa.String(length=64), nullable=False),
        sa.Column("room_id", sa.UUID(), nullable=False),
        sa.Column("tip_hash", sa.String(length=64), nullable=False),
        sa.Column("last_reply_id", sa.String(length=120), nullable=True),
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
            ["user_id"],
            ["users.id"],
            name=op.f("fk_openai_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["room_id"],
            ["rooms.id"],
            name=op.f("fk_openai_sessions_room_id_rooms"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_openai_sessions")),
        sa.UniqueConstraint("room_id", name=op.f("uq_openai_sessions_room_id")),
    )
    op.create_index(
        "ix_openai_sessions_user_id_agent_id_tip_hash",
        "openai_sessions",
        ["user_id", "agent_id", "tip_hash"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_openai_sessions_user_id_agent_id_tip_hash", table_name="openai_sessions")
    op.drop_table("openai_sessions")
