"""How many different ethics reviewers must approve an audit, recorded with the audit.

One reviewer's account recorded the committee's decision, an override included (docs/reviews.md). The
policy's ``[review] approvals`` now says how many different reviewers must approve; the number is
kept with each audit, so lowering it in the file later does not lower it for an audit already made.
Audits recorded before this revision asked for one.

Revision ID: 0018
Revises: 0017
Create Date: 2027-05-08 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply."""
    with op.batch_alter_table("model_decisions") as batch:
        batch.add_column(sa.Column("approvals_required", sa.Integer(), nullable=True))


def downgrade() -> None:
    """Revert."""
    with op.batch_alter_table("model_decisions") as batch:
        batch.drop_column("approvals_required")
