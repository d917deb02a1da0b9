"""The days a staff relationship holds: a clinical supervisor's rotation, a placement mentor's placement.

A medical school's supervisors were named on the year's rota, student by student, with no dates: one
whose block had ended in October, and one whose block starts in April, both read the student's
current engagement. ``access.csv`` may now give ``valid_from`` and ``valid_until`` (both included),
and a relationship outside its days reads nobody. Relationships loaded before this revision hold
until further notice, as before.

Revision ID: 0019
Revises: 0018
Create Date: 2027-05-09 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply."""
    with op.batch_alter_table("access_grants") as batch:
        batch.add_column(sa.Column("valid_from", sa.Date(), nullable=True))
        batch.add_column(sa.Column("valid_until", sa.Date(), nullable=True))


def downgrade() -> None:
    """Revert."""
    with op.batch_alter_table("access_grants") as batch:
        batch.drop_column("valid_until")
        batch.drop_column("valid_from")
