"""Students who objected to being scored and listed (GDPR Art. 21), left out while it is weighed and after.

Erasure was the only way out of the list (docs/reviews.md). A student may now object: from that
moment they are not scored, trained on, audited or read by staff (a restriction of processing while
the DPO weighs the objection, Art. 18(1)(d)); the DPO upholds it, or declines it with the
institution's compelling grounds, which the student reads.

Revision ID: 0017
Revises: 0016
Create Date: 2027-05-07 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply."""
    op.create_table(
        "processing_restrictions",
        sa.Column("student_id", sa.String(64), primary_key=True),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("upheld", sa.Boolean(), nullable=False),
        sa.Column("pseudonym_key", sa.String(64), nullable=True),
    )


def downgrade() -> None:
    """Revert."""
    op.drop_table("processing_restrictions")
