"""Room details: muted members, per-message read receipts in direct rooms

- room_members.is_muted: a muted room's mentions write no `mention` event to the member's
  own stream (no badge, no toast) and no notification e-mail.
- message_read_receipts: in a direct room, when the other person read each message.
- room_events_for_people: the same trigger as before, skipping mentions of muted members.

Revision ID: 0014_room_details
Revises: 0013_knowledge_sources
Create Date: 2026-12-09 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_room_details"
down_revision: str | Sequence[str] | None = "0013_knowledge_sources"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PEOPLE_TRIGGER_SQL = """
CREATE OR REPLACE FUNCTION room_events_for_people() RETURNS trigger AS $$
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
        WHERE EXISTS (SELECT 1 FROM users WHERE id = person)
          AND NOT (NEW.type = 'mention' AND EXISTS (
              SELECT 1 FROM room_members
              WHERE room_id = NEW.room_id AND user_id = person AND is_muted));
    ELSIF NEW.type = 'room.update' THEN
        INSERT INTO user_events (user_id, type, data)
        SELECT user_id, 'room.update', jsonb_build_object('room_id', NEW.room_id)
        FROM room_members WHERE room_id = NEW.room_id ORDER BY user_id;
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;
"""

PREVIOUS_TRIGGER_SQL = PEOPLE_TRIGGER_SQL.replace(
    """
          AND NOT (NEW.type = 'mention' AND EXISTS (
              SELECT 1 FROM room_members
              WHERE room_id = NEW.room_id AND user_id = person AND is_muted));""",
    ";",
)


def upgrade() -> None:
    op.add_column(
        "room_members",
        sa.Column("is_muted", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.create_table(
        "message_read_receipts",
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("room_id", sa.UUID(), nullable=False),
        sa.Column(
            "read_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_message_read_receipts_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["room_id"],
            ["rooms.id"],
            name=op.f("fk_message_read_receipts_room_id_rooms"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_message_read_receipts_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("message_id", "user_id", name=op.f("pk_message_read_receipts")),
    )
    op.create_index(
        "ix_message_read_receipts_room_id_message_id",
        "message_read_receipts",
        ["room_id", "message_id"],
    )
    op.create_index(op.f("ix_message_read_receipts_user_id"), "message_read_receipts", ["user_id"])
    op.execute(PEOPLE_TRIGGER_SQL)


def downgrade() -> None:
    op.execute(PREVIOUS_TRIGGER_SQL)
    op.drop_table("message_read_receipts")
    op.drop_column("room_members", "is_muted")
