"""Who runs a scoring run: host and process id, named when an overlapping run is refused.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 06:55:00

Both columns are nullable: runs recorded before this revision have no owner.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply."""
    # Adding nullable columns is a plain ALTER TABLE on SQLite too, so batch mode does not rebuild
    # scoring_runs (a rebuild would drop a table that indicators reference with ON DELETE CASCADE).
    with op.batch_alter_table("scoring_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("host", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("pid", sa.Integer(), nullable=True))


def downgrade() -> None:
    """Revert."""
    # Not batch mode: on SQLite that rebuilds the table, and dropping the old scoring_runs would
    # cascade to every indicator. SQLite 3.35+ drops a column in place.
    op.drop_column("scoring_runs", "pid")
    op.drop_column("scoring_runs", "host")
