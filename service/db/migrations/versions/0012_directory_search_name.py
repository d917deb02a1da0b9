"""Students' names as a search compares them, kept beside the names in the directory.

A worklist search compared ``lower()`` of the names with the typed text lowered in Python;
SQLite's ``lower()`` folds ASCII only, so a name starting "Ş", "Ö" or "İ" typed exactly as the
directory wrote it found nobody (a Turkish university's staff). The names are now folded once,
when written (``schema.search_key``: no case, no accents, dotted and dotless i alike), and the
search folds what is typed the same way. Existing entries are folded here.

Revision ID: 0012
Revises: 0011
Create Date: 2027-03-15 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from waymark.service.db.refold import refold_search_names

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply."""
    with op.batch_alter_table("student_directory") as batch:
        batch.add_column(sa.Column("search_name", sa.Text(), nullable=True))
    refold_search_names(op.get_bind())  # every entry: search_name is empty until now


def downgrade() -> None:
    """Revert."""
    with op.batch_alter_table("student_directory") as batch:
        batch.drop_column("search_name")
