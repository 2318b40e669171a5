"""Notifications: SSE presence leases, queued notifications, e-mail digests, the e-mail choice

Revision ID: 0016_notifications
Revises: 0015_team_replies
Create Date: 2026-12-10 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_notifications"
down_revision: str | Sequence[str] | None = "0015_team_replies"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column],
        [f"{target}.id"],
        name=op.f(f"fk_{table}_{column}_{target}"),
        ondelete=ondelete,
    )


def _created(name: str = "created_at") -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "user_presence",
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("process_id", sa.UUID(), nullable=False),
        sa.Column("online_until", sa.DateTime(timezone=True), nullable=False),
        _fk("user_presence", "user_id", "users", "CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "process_id", name=op.f("pk_user_presence")),
    )
    op.create_table(
        "notification_settings",
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("email_digest", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("changed_by", sa.String(length=30), nullable=False),
        _created("updated_at"),
        _fk("notification_settings", "user_id", "users", "CASCADE"),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_notification_settings")),
    )
    op.create_table(
        "notification_digests",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=False),
        _created(),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        _fk("notification_digests", "user_id", "users", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_digests")),
    )
    op.create_index(
        "ix_notification_digests_user_id_sent_at", "notification_digests", ["user_id", "sent_at"]
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("source_key", sa.String(length=160), nullable=False),
        sa.Column("room_id", sa.UUID(), nullable=True),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("actor_user_id", sa.UUID(), nullable=True),
        sa.Column("actor_agent_id", sa.String(length=64), nullable=True),
        sa.Column("digest_id", sa.UUID(), nullable=True),
        sa.Column("dropped_reason", sa.String(length=30), nullable=True),
        _created(),
        _fk("notifications", "user_id", "users", "CASCADE"),
        _fk("notifications", "room_id", "rooms", "CASCADE"),
        _fk("notifications", "message_id", "messages", "CASCADE"),
        _fk("notifications", "actor_user_id", "users", "SET NULL"),
        _fk("notifications", "digest_id", "notification_digests", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint(
            "user_id", "source_key", name=op.f("uq_notifications_user_id_source_key")
        ),
    )
    for column in ("room_id", "message_id", "actor_user_id", "digest_id"):
        op.create_index(op.f(f"ix_notifications_{column}"), "notifications", [column])
    op.create_index(
        "ix_notifications_pending",
        "notifications",
        ["user_id"],
        postgresql_where=sa.text("digest_id IS NULL AND dropped_reason IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("notifications")
    op.drop_table("notification_digests")
    op.drop_table("notification_settings")
    op.drop_table("user_presence")
