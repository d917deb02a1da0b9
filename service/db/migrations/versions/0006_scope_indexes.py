"""Indexes for reading a caller's scope of one run: indicators by run and module, programme or school.

A caseload (and a support priority) reads the caller's indicators of the served run: a module leader's
by module, a programme leader's by programme, support staff's by school. Without these the database
scans every indicator of the run for each (a tutor's students are found by the primary key).

Revision ID: 0006
Revises: 0005
Create Date: 2027-01-11 10:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_indicators_run_module": ["run_id", "module_id"],
    "ix_indicators_run_programme": ["run_id", "programme_id"],
    "ix_indicators_run_school": ["run_id", "school_id"],
}


def upgrade() -> None:
    """Apply."""
    for name, columns in INDEXES.items():
        op.create_index(name, "indicators", columns, unique=False)


def downgrade() -> None:
    """Revert."""
    for name in INDEXES:
        op.drop_index(name, table_name="indicators")
