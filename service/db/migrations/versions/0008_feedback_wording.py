"""Staff feedback says an indicator seems wrong, not that a student was 'flagged'.

The feedback value ``incorrectly_flagged`` named the student as flagged, which is the labelling
Waymark never does (PRODUCT §2); it reached the student's own export. Stored rows take the new
value ``seems_wrong``, which means the same: the member of staff thinks the indicator is wrong for
this student.

Revision ID: 0008
Revises: 0007
Create Date: 2027-02-01 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_FEEDBACK = sa.table("feedback", sa.column("value", sa.String))


def upgrade() -> None:
    """Apply."""
    op.execute(
        _FEEDBACK.update().where(_FEEDBACK.c.value == "incorrectly_flagged").values(value="seems_wrong")
    )


def downgrade() -> None:
    """Revert."""
    op.execute(
        _FEEDBACK.update().where(_FEEDBACK.c.value == "seems_wrong").values(value="incorrectly_flagged")
    )
