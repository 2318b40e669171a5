"""privacy: the ledger's notes can lose personal data, erasure fingerprints, stream index,
room vector removals

- ledger_entries stay append-only for what they record (who, how much, why, when); an
  update may only change `meta`, so an erasure can take a person's id out of another
  person's entry. Existing referral entries lose the referred person's id, which the
  referral row (deleted with that person) already holds.
- erasure_targets.text_fingerprints: hashes of the subject's messages, for the scan;
  name_room_ids: where their full name may be replaced on its own.
- an index on the reply id of stream events (deleted once a reply is over).
- room_vector_removals: deleted rooms whose vectors are still to be removed.
- rooms.owner_only: rooms nobody joins (/v1 conversations, a direct room with agents only),
  where agents may use the owner's memories.

Revision ID: 0017_privacy
Revises: 0016_notifications
Create Date: 2026-12-08 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0017_privacy"
down_revision: str | Sequence[str] | None = "0016_notifications"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEDGER_FACTS_ONLY_SQL = """
CREATE OR REPLACE FUNCTION ledger_entries_no_update() RETURNS trigger AS $$
BEGIN
    IF NEW.id = OLD.id AND NEW.user_id = OLD.user_id AND NEW.amount = OLD.amount
       AND NEW.kind = OLD.kind AND NEW.source = OLD.source AND NEW.source_id = OLD.source_id
       AND NEW.created_at = OLD.created_at THEN
        RETURN NEW;  -- only the notes (meta) change: an erasure scrubbing a person out
    END IF;
    RAISE EXCEPTION 'ledger_entries is append-only' USING ERRCODE = 'restrict_violation';
END $$ LANGUAGE plpgsql;
"""

LEDGER_APPEND_ONLY_SQL = """
CREATE OR REPLACE FUNCTION ledger_entries_no_update() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'ledger_entries is append-only' USING ERRCODE = 'restrict_violation';
END $$ LANGUAGE plpgsql;
"""


def upgrade() -> None:
    op.execute(LEDGER_FACTS_ONLY_SQL)
    op.execute(
        "UPDATE ledger_entries SET meta = meta - 'referred_user_id' WHERE meta ? 'referred_user_id'"
    )
    op.add_column(
        "erasure_targets",
        sa.Column(
            "text_fingerprints",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
    )
    op.add_column(
        "erasure_targets",
        sa.Column(
            "name_room_ids",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
    )
    op.create_index(
        "ix_room_events_stream_reply_id",
        "room_events",
        [sa.literal_column("(data ->> 'reply_id')")],
        unique=False,
        postgresql_where=sa.text("type IN ('agent.delta', 'agent.reset')"),
    )
    # Stream events of replies that are over: their message holds the text.
    op.execute(
        "DELETE FROM room_events e USING room_events d"
        " WHERE d.room_id = e.room_id AND d.type IN ('agent.done', 'agent.error')"
        " AND d.data ->> 'reply_id' = e.data ->> 'reply_id'"
        " AND e.type IN ('agent.delta', 'agent.reset')"
    )
    op.add_column(
        "rooms",
        sa.Column("owner_only", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    op.execute("UPDATE rooms SET owner_only = true WHERE kind = 'api'")
    op.create_table(
        "room_vector_removals",
        sa.Column("room_id", sa.UUID(), nullable=False),
        sa.Column("org_id", sa.UUID(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("room_id", name=op.f("pk_room_vector_removals")),
    )


def downgrade() -> None:
    op.drop_table("room_vector_removals")
    op.drop_column("rooms", "owner_only")
    op.drop_index("ix_room_events_stream_reply_id", table_name="room_events")
    op.drop_column("erasure_targets", "name_room_ids")
    op.drop_column("erasure_targets", "text_fingerprints")
    op.execute(LEDGER_APPEND_ONLY_SQL)
