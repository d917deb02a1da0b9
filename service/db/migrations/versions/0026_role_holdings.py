"""The staff roles each person has been seen holding, so that the committee is not the model's builders.

Nothing stopped one person holding both the data scientist's and the ethics reviewer's roles, and so
approving the models they build (docs/reviews.md). ``role_holdings`` keeps, per person and staff role,
when they were first and last seen in it: at each sign-in to the workspace (every role the identity
provider gives them), and whenever a data scientist's token reads the committee's reports. An
approval by a person seen holding the data scientist's role is refused. The service role may add and
update rows but not remove them (``grants.sql``): a holding is taken back by the database owner.

Revision ID: 0026
Revises: 0025
Create Date: 2027-06-18 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply."""
    op.create_table(
        "role_holdings",
        sa.Column("staff_id", sa.String(64), primary_key=True),
        sa.Column("role", sa.String(32), primary_key=True),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    """Revert."""
    op.drop_table("role_holdings")
