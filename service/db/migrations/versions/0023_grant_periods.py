"""Several periods of one staff relationship: a supervisor with the same student in two separate blocks.

``access_grants`` held one row per relationship (staff, relationship, scope), so a clinical
supervisor with the same student in an autumn and a spring block was given one span across both, and
read the student through the months between. A relationship may now hold several periods that do not
overlap, one row each, numbered by ``period`` from 0 in order of their first day. The rows written
before this revision are period 0.

The table is altered in place on PostgreSQL, so the grants the owner gave the service role on it
(``grants.sql``) stay; SQLite's batch mode copies it into a new table (SQLite has no grants).

Revision ID: 0023
Revises: 0022
Create Date: 2027-05-28 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

TABLE = "access_grants"
RELATIONSHIP = ["staff_id", "relationship", "scope_type", "scope_id"]


def _primary_key(columns: list[str]) -> None:
    """Make ``columns`` the table's primary key (the table has its ``period`` column when this runs)."""
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":  # the copy is made with the new key (a key set by batch warns)
        keyed = sa.Table(
            TABLE,
            sa.MetaData(),
            sa.Column("staff_id", sa.String(64), primary_key=True),
            sa.Column("relationship", sa.String(32), primary_key=True),
            sa.Column("scope_type", sa.String(16), primary_key=True),
            sa.Column("scope_id", sa.String(64), primary_key=True),
            sa.Column("valid_from", sa.Date(), nullable=True),
            sa.Column("valid_until", sa.Date(), nullable=True),
            sa.Column(
                "period", sa.Integer(), primary_key="period" in columns, nullable=False, server_default="0"
            ),
        )
        with op.batch_alter_table(TABLE, recreate="always", copy_from=keyed):
            pass
        return
    name = sa.inspect(bind).get_pk_constraint(TABLE)["name"] or f"{TABLE}_pkey"
    op.drop_constraint(name, TABLE, type_="primary")
    op.create_primary_key(f"{TABLE}_pkey", TABLE, columns)


def upgrade() -> None:
    """Apply."""
    with op.batch_alter_table(TABLE) as batch:
        batch.add_column(sa.Column("period", sa.Integer(), nullable=False, server_default="0"))
    _primary_key([*RELATIONSHIP, "period"])


def downgrade() -> None:
    """Revert, where no access would widen: refused while a relationship holds several periods.

    The earlier release holds one span per relationship, which would let the staff member read the
    student in the months between periods. Load the relationships with one period each first
    (``waymark access import``); nothing is changed meanwhile.
    """
    bind = op.get_bind()
    held = bind.execute(sa.text(f"SELECT count(*) FROM {TABLE} WHERE period > 0")).scalar()
    if held:
        raise RuntimeError(
            f"cannot go back before revision 0023: {held} staff relationship period(s) follow an earlier "
            "period of the same relationship, and the earlier release would read one span across them. "
            "Import the relationships with one period each first; nothing changed."
        )
    _primary_key(RELATIONSHIP)
    with op.batch_alter_table(TABLE) as batch:
        batch.drop_column("period")
