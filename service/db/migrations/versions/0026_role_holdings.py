"""Who has held the data scientist's role, so that the ethics committee is not the model's builders.

Nothing stopped one person holding both the data scientist's and the ethics reviewer's roles, and so
approving the models they build (docs/reviews.md). ``role_holdings`` keeps, per person, when they were
first and last seen holding the data scientist's role: at a sign-in to the workspace that gives it,
and when a data scientist reads the committee's reports. An approval by such a person is refused, and
one given before is not counted. The people signed in with that role when this revision is applied
are recorded from their sessions. The service role may add rows and refresh ``last_seen_at``, but not
change or remove a holding (``grants.sql``): a holding is taken back by the database owner.

Revision ID: 0026
Revises: 0025
Create Date: 2027-06-18 10:00:00
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

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
    # Sessions begun before this revision recorded nothing: their people are recorded from them.
    sessions = sa.table("web_sessions", sa.column("sub", sa.String), sa.column("roles", sa.Text))
    bind = op.get_bind()
    subs = {
        sub
        for sub, roles in bind.execute(sa.select(sessions.c.sub, sa.cast(sessions.c.roles, sa.Text)))
        if "data_scientist" in ((json.loads(roles) if isinstance(roles, str) else roles) or [])
    }
    now = datetime.now(UTC)
    holdings = sa.table(
        "role_holdings",
        sa.column("staff_id", sa.String),
        sa.column("role", sa.String),
        sa.column("first_seen_at", sa.DateTime(timezone=True)),
        sa.column("last_seen_at", sa.DateTime(timezone=True)),
    )
    if subs:
        op.bulk_insert(
            holdings,
            [
                {"staff_id": s, "role": "data_scientist", "first_seen_at": now, "last_seen_at": now}
                for s in sorted(subs)
            ],
        )


def downgrade() -> None:
    """Revert."""
    op.drop_table("role_holdings")
