"""The list order: each indicator's smoothed estimate, and the smoothing weight of its run.

The monitoring policy may steady the outreach list by ordering it on an exponentially weighted mean of
each registration's estimates over runs (``stability.smoothing``, docs/monitoring.md). Scoring stores
that value with each indicator (``priority``; equal to the estimate when smoothing is off) and the
weight with its run, so that every read orders the list the same way and can say how it was ordered.
Rows from before this revision have neither and are ordered by their estimate.

Revision ID: 0007
Revises: 0006
Create Date: 2027-01-18 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply."""
    with op.batch_alter_table("indicators") as batch:
        batch.add_column(sa.Column("priority", sa.Float(), nullable=True))
    with op.batch_alter_table("scoring_runs") as batch:
        batch.add_column(sa.Column("smoothing", sa.Float(), nullable=True))


def downgrade() -> None:
    """Revert."""
    with op.batch_alter_table("scoring_runs") as batch:
        batch.drop_column("smoothing")
    with op.batch_alter_table("indicators") as batch:
        batch.drop_column("priority")
