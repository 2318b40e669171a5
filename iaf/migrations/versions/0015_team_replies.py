"""agent_runs.team_id: the runs of a team answer (TeamReply), its parts and its synthesis

Revision ID: 0015_team_replies
Revises: 0014_room_details
Create Date: 2026-12-09 14:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_team_replies"
down_revision: str | Sequence[str] | None = "0014_room_details"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("agent_runs", sa.Column("team_id", sa.String(length=120), nullable=True))
    op.create_index(op.f("ix_agent_runs_team_id"), "agent_runs", ["team_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_agent_runs_team_id"), table_name="agent_runs")
    op.drop_column("agent_runs", "team_id")
