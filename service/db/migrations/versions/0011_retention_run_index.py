"""A partial index on the access log's retention-run records.

The public transparency statement says when retention last ran, from the access log's
``retention_run`` records; without an index that was a scan of the whole log on every request to a
public page (a red team's finding). Partial, so writing any other record does not touch it.

Revision ID: 0011
Revises: 0010
Create Date: 2027-03-08 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_WHERE = sa.text("action = 'retention_run'")


def upgrade() -> None:
    """Apply."""
    op.create_index(
        "ix_audit_retention_runs", "audit_log", ["at"], sqlite_where=_WHERE, postgresql_where=_WHERE
    )


def downgrade() -> None:
    """Revert."""
    op.drop_index("ix_audit_retention_runs", table_name="audit_log")
