"""agent_runs.stream_attempt: which streaming attempt may still write a reply's deltas

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 18:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("agent_runs", sa.Column("stream_attempt", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("agent_runs", "stream_attempt")
