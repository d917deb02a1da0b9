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
    """Revert: one row per relationship, from the first day of its first period to the last of its last.

    The earlier release reads one span: the months between periods are read again, as they were.
    """
    bind = op.get_bind()
    keys = ", ".join(RELATIONSHIP)
    spans = bind.execute(
        sa.text(
            f"SELECT {keys}, MIN(valid_from), MAX(valid_until), "
            "SUM(CASE WHEN valid_from IS NULL THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN valid_until IS NULL THEN 1 ELSE 0 END) "
            f"FROM {TABLE} GROUP BY {keys} HAVING COUNT(*) > 1"
        )
    ).all()
    match = " AND ".join(f"{k} = :{k}" for k in RELATIONSHIP)
    for *key, first, last, open_start, open_end in spans:
        values = dict(zip(RELATIONSHIP, key, strict=True))
        bind.execute(sa.text(f"DELETE FROM {TABLE} WHERE {match} AND period > 0"), values)
        bind.execute(
            sa.text(f"UPDATE {TABLE} SET valid_from = :first, valid_until = :last WHERE {match}"),
            {**values, "first": None if open_start else first, "last": None if open_end else last},
        )
    _primary_key(RELATIONSHIP)
    with op.batch_alter_table(TABLE) as batch:
        batch.drop_column("period")
