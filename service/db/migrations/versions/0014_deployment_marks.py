"""Whether the database has been opened in production, recorded in the database itself.

``waymark model review`` records the committee's decision from the command line only in development,
and that was all the environment said: an operator who could promote set WAYMARK_ENV=development for
one command against the production database and recorded an approval, with a gate override, under
a name they typed (a red team's finding). A process opening the database in production now marks it
(``engine.opened``), and a decision from the command line on a marked database is refused whatever
the environment says.

Revision ID: 0014
Revises: 0013
Create Date: 2027-05-04 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply."""
    op.create_table(
        "deployment_marks",
        sa.Column("mode", sa.String(16), primary_key=True),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
    )


def downgrade() -> None:
    """Revert."""
    op.drop_table("deployment_marks")
