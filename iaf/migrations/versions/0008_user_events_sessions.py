"""user_events (each person's own stream), revoked_tokens (sign-out), email_changes

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 21:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A person's events come from the rooms' log: joining, leaving or changing role in a room,
# being mentioned, a room renamed or deleted. Ids are drawn at commit under one lock, so the
# ids a stream reads for one person only grow in commit order and Last-Event-ID resumes
# exactly (a row inserted earlier but committed later still gets the larger id). The lock is
# taken last, at commit, so it cannot deadlock with the rooms' locks. Rows carry ids only.
USER_EVENTS_SQL = """
CREATE SEQUENCE user_events_delivery_seq;

CREATE FUNCTION user_events_at_commit() RETURNS trigger AS $$
DECLARE
    assigned bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('user_events', 11));
    UPDATE user_events SET id = nextval('user_events_delivery_seq')
        WHERE seq = NEW.seq AND id IS NULL
        RETURNING id INTO assigned;
    IF assigned IS NOT NULL THEN
        PERFORM pg_notify('user_events', json_build_object(
            'user_id', NEW.user_id, 'id', assigned, 'type', NEW.type, 'data', NEW.data)::text);
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE CONSTRAINT TRIGGER user_events_deliver AFTER INSERT ON user_events
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION user_events_at_commit();

CREATE FUNCTION room_events_for_people() RETURNS trigger AS $$
DECLARE
    person uuid;
BEGIN
    IF NEW.type IN ('member.add', 'member.remove', 'member.update', 'mention') THEN
        IF coalesce(NEW.data->>'user_id', '') !~ '^[0-9a-f-]{36}$' THEN
            RETURN NULL;
        END IF;
        person := (NEW.data->>'user_id')::uuid;
        INSERT INTO user_events (user_id, type, data)
        SELECT person,
               CASE NEW.type WHEN 'member.add' THEN 'room.join'
                             WHEN 'member.remove' THEN 'room.leave'
                             WHEN 'member.update' THEN 'room.role'
                             ELSE 'mention' END,
               jsonb_strip_nulls(jsonb_build_object(
                   'room_id', NEW.room_id, 'message_id', NEW.data->'message_id',
                   'role', NEW.data->'role'))
        WHERE EXISTS (SELECT 1 FROM users WHERE id = person);
    ELSIF NEW.type = 'room.update' THEN
        INSERT INTO user_events (user_id, type, data)
        SELECT user_id, 'room.update', jsonb_build_object('room_id', NEW.room_id)
        FROM room_members WHERE room_id = NEW.room_id ORDER BY user_id;
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER room_events_people AFTER INSERT ON room_events
    FOR EACH ROW EXECUTE FUNCTION room_events_for_people();

CREATE FUNCTION rooms_deleted_for_people() RETURNS trigger AS $$
BEGIN
    INSERT INTO user_events (user_id, type, data)
    SELECT user_id, 'room.delete', jsonb_build_object('room_id', OLD.id)
    FROM room_members WHERE room_id = OLD.id ORDER BY user_id;
    RETURN OLD;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER rooms_deleted_people BEFORE DELETE ON rooms
    FOR EACH ROW EXECUTE FUNCTION rooms_deleted_for_people();
"""


def upgrade() -> None:
    op.create_table(
        "user_events",
        sa.Column("seq", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("id", sa.BigInteger(), nullable=True),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column(
            "data",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_events_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_user_events")),
        sa.UniqueConstraint("id", name=op.f("uq_user_events_id")),
    )
    op.create_index(
        "ix_user_events_user_id_id",
        "user_events",
        ["user_id", "id"],
        unique=False,
        postgresql_where=sa.text("id IS NOT NULL"),
    )
    op.execute(USER_EVENTS_SQL)
    op.create_table(
        "revoked_tokens",
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_revoked_tokens_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_revoked_tokens")),
    )
    op.create_index(op.f("ix_revoked_tokens_user_id"), "revoked_tokens", ["user_id"])
    op.create_index(op.f("ix_revoked_tokens_expires_at"), "revoked_tokens", ["expires_at"])
    op.create_table(
        "email_changes",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("new_email", sa.String(length=320), nullable=False),
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
            name=op.f("fk_email_changes_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_changes")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_email_changes_token_hash")),
    )
    op.create_index(op.f("ix_email_changes_user_id"), "email_changes", ["user_id"])


def downgrade() -> None:
    op.drop_table("email_changes")
    op.drop_table("revoked_tokens")
    op.execute(
        "DROP TRIGGER rooms_deleted_people ON rooms; DROP FUNCTION rooms_deleted_for_people();"
        "DROP TRIGGER room_events_people ON room_events; DROP FUNCTION room_events_for_people();"
    )
    op.drop_table("user_events")
    op.execute("DROP FUNCTION user_events_at_commit(); DROP SEQUENCE user_events_delivery_seq")
