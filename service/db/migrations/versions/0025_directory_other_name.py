"""A student's name in a second script in the directory.

A directory held a display name and a preferred name, so a student whose records hold their name in
two scripts (محمد العلي beside Mohammed Al-Ali, 张伟 beside Zhang Wei, Нұрлан beside Nurlan) was found
by staff typing only the one the import kept, and told apart from others of the same name only by
their id. ``student_directory.other_name`` holds the second; the search key of entries imported from
now on reads it too (an entry written before has none: the next import writes it).

Revision ID: 0025
Revises: 0024
Create Date: 2027-06-11 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from waymark.service.db.refold import refold_search_names

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply."""
    with op.batch_alter_table("student_directory") as batch:
        batch.add_column(sa.Column("other_name", sa.String(200), nullable=True))


def downgrade() -> None:
    """Revert: the names in a second script go, from the search keys too."""
    with op.batch_alter_table("student_directory") as batch:
        batch.drop_column("other_name")
    refold_search_names(op.get_bind())
