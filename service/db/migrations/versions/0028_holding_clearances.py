"""Who cleared a holding of the data scientist's role, when and why; who trained an audited version.

A person recorded holding the data scientist's role may not approve a model (revision 0026), and
only the database owner clears a holding that no longer stands. That was a plain ``DELETE``: nothing
said who cleared it or why, and the approvals it had voided counted again without a trace.
``holding_clearances`` keeps each clearance, with the holding's own first and last seen times, the
operator and the database user who cleared it, and whether it had been recorded in error (only then
do the approvals given before it count again); ``waymark access clear-holding`` writes it and removes
the holding in one transaction. The service's database role reads it and never writes it
(``grants.sql``).

``model_decisions.trained_by`` keeps, on an audit, who trained the version (its training run's
``trained_by`` tag): their approval of it is refused, whatever their holdings. Audits recorded before
name nobody. ``ix_access_grants_scope`` reads relationships by what they reach (a student's copy of
their data, the DPO's list), which the primary key, led by the member of staff, does not.

Revision ID: 0028
Revises: 0027
Create Date: 2027-07-02 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply."""
    op.create_table(
        "holding_clearances",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("staff_id", sa.String(64), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cleared_by", sa.String(200), nullable=False),
        sa.Column("database_user", sa.String(200), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("in_error", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_holding_clearances_staff_id", "holding_clearances", ["staff_id"])
    with op.batch_alter_table("model_decisions") as batch:
        batch.add_column(sa.Column("trained_by", sa.String(200), nullable=True))
    op.create_index("ix_access_grants_scope", "access_grants", ["scope_type", "scope_id"])


def downgrade() -> None:
    """Revert: the record of clearances goes.

    The holdings they cleared stay cleared, and the approvals given before them count again, as they
    did before this revision.
    """
    op.drop_index("ix_access_grants_scope", table_name="access_grants")
    with op.batch_alter_table("model_decisions") as batch:
        batch.drop_column("trained_by")
    op.drop_index("ix_holding_clearances_staff_id", table_name="holding_clearances")
    op.drop_table("holding_clearances")
