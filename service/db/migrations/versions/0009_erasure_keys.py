"""The pseudonym key an erasure was recorded under, and the key of each run's data.

A student's erasure is kept as their id in ``training_exclusions``. Ids made with another secret, or
not pseudonymised at all, name the same student differently: an import under a new secret brought an
erased student back into scoring without a word (a red team's finding). Each scoring run now records
the identifier of the key its data folder's ids were made with (``""`` for ids not pseudonymised by a
Waymark mapping), and each erasure the key of the run that served the student; training, audits and
scoring refuse a folder whose key differs from one an erasure was recorded under. Rows from before
this revision have neither (NULL): their key is not known, and they are not checked.

Revision ID: 0009
Revises: 0008
Create Date: 2027-02-15 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply."""
    with op.batch_alter_table("scoring_runs") as batch:
        batch.add_column(sa.Column("pseudonym_key", sa.String(64), nullable=True))
    with op.batch_alter_table("training_exclusions") as batch:
        batch.add_column(sa.Column("pseudonym_key", sa.String(64), nullable=True))


def downgrade() -> None:
    """Revert."""
    with op.batch_alter_table("training_exclusions") as batch:
        batch.drop_column("pseudonym_key")
    with op.batch_alter_table("scoring_runs") as batch:
        batch.drop_column("pseudonym_key")
