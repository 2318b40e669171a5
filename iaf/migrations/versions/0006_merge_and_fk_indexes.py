"""Join the feature branches into one head; index foreign keys that deletes look up.

Revision ID: 0006
Revises: 0002, 0003, 0004, 0005
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = ("0002", "0003", "0004", "0005")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Deleting a message or a user checks these references; without an index, each is a scan.
    op.create_index("ix_agent_runs_reply_message_id", "agent_runs", ["reply_message_id"])
    op.create_index("ix_invitations_accepted_user_id", "invitations", ["accepted_user_id"])


def downgrade() -> None:
    op.drop_index("ix_invitations_accepted_user_id", table_name="invitations")
    op.drop_index("ix_agent_runs_reply_message_id", table_name="agent_runs")
