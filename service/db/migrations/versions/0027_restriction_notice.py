"""When a restriction the DPO has ended stops keeping its student out: told before it is lifted.

GDPR Art. 18(3) asks that a student who obtained a restriction of processing be told before it is
lifted. A declined objection or correction, and an accepted correction recorded as reaching the data,
had lifted it in the same step as the student was told. ``processing_restrictions.lifts_at`` holds the
moment the notice given with the decision runs out (``WAYMARK_RESTRICTION_NOTICE_DAYS``); until then
the student stays left out, and every reader counts the restriction as standing. Empty: it stands until
decided, as every restriction written before this revision does.

Revision ID: 0027
Revises: 0026
Create Date: 2027-06-25 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply."""
    with op.batch_alter_table("processing_restrictions") as batch:
        batch.add_column(sa.Column("lifts_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Revert: restrictions in their notice are lifted now (the revision before knew no notice)."""
    restrictions = sa.table("processing_restrictions", sa.column("lifts_at", sa.DateTime(timezone=True)))
    op.execute(sa.delete(restrictions).where(restrictions.c.lifts_at.is_not(None)))
    with op.batch_alter_table("processing_restrictions") as batch:
        batch.drop_column("lifts_at")
