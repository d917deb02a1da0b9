"""When an accepted correction was recorded as reaching the data Waymark reads.

A correction is made in the records system; the notice that estimates rest on the data before it had
ended at the next scoring run, and then at the next run on changed data, which a weekly append of
activity always is (a red team's finding, then a reviewer's). The DPO now records when the corrected
data arrived, and the notice holds until a run after that.

Revision ID: 0015
Revises: 0014
Create Date: 2027-05-05 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply."""
    with op.batch_alter_table("rights_requests") as batch:
        batch.add_column(sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Revert."""
    with op.batch_alter_table("rights_requests") as batch:
        batch.drop_column("applied_at")
