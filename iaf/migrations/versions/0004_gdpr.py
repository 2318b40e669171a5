"""gdpr: data-subject requests and steps, download tokens, consents, erasure audit and targets

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-24 06:19:14.043269
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "erasure_audit",
        sa.Column("request_id", sa.UUID(), nullable=False),
        sa.Column("subject_ref", sa.String(length=64), nullable=False),
        sa.Column("org_id", sa.UUID(), nullable=False),
        sa.Column("requested_via", sa.String(length=20), nullable=False),
        sa.Column("requested_by_ref", sa.String(length=64), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("steps", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("verification", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("receipt", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("receipt_signature", sa.String(length=128), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retain_until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_erasure_audit")),
    )
    op.create_index(
        op.f("ix_erasure_audit_retain_until"), "erasure_audit", ["retain_until"], unique=False
    )
    op.create_index(
        op.f("ix_erasure_audit_subject_ref"), "erasure_audit", ["subject_ref"], unique=False
    )
    op.create_table(
        "consent_history",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("purpose", sa.String(length=40), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column(
            "changed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_consent_history_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_history")),
    )
    op.create_index(
        "ix_consent_history_user_id_id", "consent_history", ["user_id", "id"], unique=False
    )
    op.create_table(
        "consents",
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("purpose", sa.String(length=40), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_consents_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "purpose", name=op.f("pk_consents")),
    )
    op.create_table(
        "data_subject_requests",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("subject_user_id", sa.UUID(), nullable=True),
        sa.Column("subject_ref", sa.String(length=64), nullable=False),
        sa.Column("org_id", sa.UUID(), nullable=False),
        sa.Column("requested_via", sa.String(length=20), nullable=False),
        sa.Column("requested_by", sa.UUID(), nullable=True),
        sa.Column("requested_by_ref", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("failed_step", sa.String(length=40), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("grace_until", sa.DateTime(timezone=True), nullable=True),
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
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("archive_name", sa.String(length=200), nullable=True),
        sa.Column("archive_bytes", sa.BigInteger(), nullable=True),
        sa.Column("archive_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("archive_deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("verification", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.ForeignKeyConstraint(
            ["requested_by"],
            ["users.id"],
            name=op.f("fk_data_subject_requests_requested_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["subject_user_id"],
            ["users.id"],
            name=op.f("fk_data_subject_requests_subject_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_subject_requests")),
    )
    op.create_index(
        "ix_data_subject_requests_org_id_created_at",
        "data_subject_requests",
        ["org_id", "created_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_data_subject_requests_requested_by"),
        "data_subject_requests",
        ["requested_by"],
        unique=False,
    )
    op.create_index(
        op.f("ix_data_subject_requests_subject_ref"),
        "data_subject_requests",
        ["subject_ref"],
        unique=False,
    )
    op.create_index(
        op.f("ix_data_subject_requests_subject_user_id"),
        "data_subject_requests",
        ["subject_user_id"],
        unique=False,
    )
    op.create_index(
        "uq_data_subject_requests_open",
        "data_subject_requests",
        ["kind", "subject_user_id"],
        unique=True,
        postgresql_where=sa.text("status IN ('pending', 'in_grace', 'in_progress', 'error')"),
    )
    op.create_table(
        "data_subject_request_steps",
        sa.Column("request_id", sa.UUID(), nullable=False),
        sa.Column("step", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("detail", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["data_subject_requests.id"],
            name=op.f("fk_data_subject_request_steps_request_id_data_subject_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("request_id", "step", name=op.f("pk_data_subject_request_steps")),
    )
    op.create_table(
        "erasure_targets",
        sa.Column("request_id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("org_id", sa.UUID(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("handle", sa.String(length=64), nullable=False),
        sa.Column("account_created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("room_ids", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["data_subject_requests.id"],
            name=op.f("fk_erasure_targets_request_id_data_subject_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_erasure_targets")),
    )
    op.create_table(
        "export_download_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.UUID(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["data_subject_requests.id"],
            name=op.f("fk_export_download_tokens_request_id_data_subject_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_export_download_tokens")),
    )
    op.create_index(
        op.f("ix_export_download_tokens_request_id"),
        "export_download_tokens",
        ["request_id"],
        unique=False,
    )

    # Erasure deletes private rooms; each deleted message clears reply_to_id of its replies.
    op.create_index(
        "ix_messages_reply_to_id",
        "messages",
        ["reply_to_id"],
        unique=False,
        postgresql_where=sa.text("reply_to_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_messages_reply_to_id", table_name="messages")
    op.drop_index(op.f("ix_export_download_tokens_request_id"), table_name="export_download_tokens")
    op.drop_table("export_download_tokens")
    op.drop_table("erasure_targets")
    op.drop_table("data_subject_request_steps")
    op.drop_index(
        "uq_data_subject_requests_open",
        table_name="data_subject_requests",
        postgresql_where=sa.text("status IN ('pending', 'in_grace', 'in_progress', 'error')"),
    )
    op.drop_index(
        op.f("ix_data_subject_requests_subject_user_id"), table_name="data_subject_requests"
    )
    op.drop_index(op.f("ix_data_subject_requests_subject_ref"), table_name="data_subject_requests")
    op.drop_index("ix_data_subject_requests_org_id_created_at", table_name="data_subject_requests")
    op.drop_table("data_subject_requests")
    op.drop_table("consents")
    op.drop_index("ix_consent_history_user_id_id", table_name="consent_history")
    op.drop_table("consent_history")
    op.drop_index(op.f("ix_erasure_audit_subject_ref"), table_name="erasure_audit")
    op.drop_index(op.f("ix_erasure_audit_retain_until"), table_name="erasure_audit")
    op.drop_table("erasure_audit")
