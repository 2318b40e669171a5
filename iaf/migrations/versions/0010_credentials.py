"""Credentials: API key scopes and expiry, password resets, and a NOTIFY on every change that
ends a credential (the API closes the SSE streams it authenticated)

Revision ID: 0010_credentials
Revises: 0009_knowledge_chunks
Create Date: 2026-12-09 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010_credentials"
down_revision: str | Sequence[str] | None = "0009_knowledge_chunks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A user's status or token version changing, an API key revoked or expiring, a user or key
# deleted: each tells every API replica (channel `credentials`, ids only) to re-check the
# streams it opened for that person.
NOTIFY_FUNCTION = """
CREATE FUNCTION notify_credentials() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    row_data record;
BEGIN
    IF TG_OP = 'DELETE' THEN row_data := OLD; ELSE row_data := NEW; END IF;
    IF TG_TABLE_NAME = 'users' THEN
        PERFORM pg_notify('credentials', json_build_object('user_id', row_data.id)::text);
    ELSIF TG_TABLE_NAME = 'revoked_tokens' THEN
        PERFORM pg_notify('credentials', json_build_object('user_id', row_data.user_id)::text);
    ELSE
        PERFORM pg_notify(
            'credentials',
            json_build_object('user_id', row_data.user_id, 'key_id', row_data.id)::text
        );
    END IF;
    RETURN NULL;
END $$;
"""
TRIGGERS = (
    "CREATE TRIGGER users_credentials AFTER UPDATE ON users FOR EACH ROW"
    " WHEN (OLD.status IS DISTINCT FROM NEW.status"
    " OR OLD.token_version IS DISTINCT FROM NEW.token_version)"
    " EXECUTE FUNCTION notify_credentials()",
    "CREATE TRIGGER users_credentials_gone AFTER DELETE ON users FOR EACH ROW"
    " EXECUTE FUNCTION notify_credentials()",
    "CREATE TRIGGER api_keys_credentials AFTER UPDATE ON api_keys FOR EACH ROW"
    " WHEN (OLD.revoked_at IS DISTINCT FROM NEW.revoked_at"
    " OR OLD.expires_at IS DISTINCT FROM NEW.expires_at OR OLD.scopes IS DISTINCT FROM NEW.scopes)"
    " EXECUTE FUNCTION notify_credentials()",
    "CREATE TRIGGER api_keys_credentials_gone AFTER DELETE ON api_keys FOR EACH ROW"
    " EXECUTE FUNCTION notify_credentials()",
    # A signed-out token (POST /api/auth/logout) ends the streams it opened.
    "CREATE TRIGGER revoked_tokens_credentials AFTER INSERT ON revoked_tokens FOR EACH ROW"
    " EXECUTE FUNCTION notify_credentials()",
)


def upgrade() -> None:
    # Keys made before scopes existed keep doing what they did: every scope.
    op.add_column(
        "api_keys",
        sa.Column(
            "scopes",
            postgresql.ARRAY(sa.String(length=20)),
            nullable=False,
            server_default=sa.text("ARRAY['chat', 'agents', 'compliance']::varchar(20)[]"),
        ),
    )
    op.alter_column("api_keys", "scopes", server_default=sa.text("ARRAY[]::varchar(20)[]"))
    op.add_column("api_keys", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "password_resets",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("token_salt", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("mail_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_password_resets_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_resets")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_password_resets_token_hash")),
    )
    op.create_index(
        op.f("ix_password_resets_user_id"), "password_resets", ["user_id"], unique=False
    )
    op.execute(NOTIFY_FUNCTION)
    for trigger in TRIGGERS:
        op.execute(trigger)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS revoked_tokens_credentials ON revoked_tokens")
    op.execute("DROP TRIGGER IF EXISTS api_keys_credentials_gone ON api_keys")
    op.execute("DROP TRIGGER IF EXISTS api_keys_credentials ON api_keys")
    op.execute("DROP TRIGGER IF EXISTS users_credentials_gone ON users")
    op.execute("DROP TRIGGER IF EXISTS users_credentials ON users")
    op.execute("DROP FUNCTION IF EXISTS notify_credentials()")
    op.drop_index(op.f("ix_password_resets_user_id"), table_name="password_resets")
    op.drop_table("password_resets")
    op.drop_column("api_keys", "expires_at")
    op.drop_column("api_keys", "scopes")
