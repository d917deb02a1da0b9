"""A module relationship on one presentation of the module.

A module leader's grant covered every presentation of the module: a US course's 8-week section and
its full-term section run in the same term, each with its own instructor, and each instructor read
the other's students. ``access_grants.presentation_id`` now narrows a module relationship to one
presentation ("" for every presentation, as every row written before this revision), and is part of
the key, so an instructor may hold two sections of one course.

The table is altered in place on PostgreSQL, so the grants the owner gave the service role on it
(``grants.sql``) stay; SQLite's batch mode copies it into a new table (SQLite has no grants).

Revision ID: 0024
Revises: 0023
Create Date: 2027-06-04 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

TABLE = "access_grants"
KEY = ["staff_id", "relationship", "scope_type", "scope_id", "period"]


def _primary_key(columns: list[str]) -> None:
    """Make ``columns`` the table's key (the table has its ``presentation_id`` column when this runs)."""
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
            sa.Column("period", sa.Integer(), primary_key=True, nullable=False, server_default="0"),
            sa.Column(
                "presentation_id",
                sa.String(64),
                primary_key="presentation_id" in columns,
                nullable=False,
                server_default="",
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
        batch.add_column(sa.Column("presentation_id", sa.String(64), nullable=False, server_default=""))
    _primary_key([*KEY, "presentation_id"])


def downgrade() -> None:
    """Revert, where no access would widen: refused while a relationship names one presentation.

    The earlier release reads a module relationship over every presentation of the module, which
    would let an instructor read another section's students. Load the relationships without
    presentations first (``waymark access import``); nothing is changed meanwhile.
    """
    bind = op.get_bind()
    held = bind.execute(sa.text(f"SELECT count(*) FROM {TABLE} WHERE presentation_id <> ''")).scalar()
    if held:
        raise RuntimeError(
            f"cannot go back before revision 0024: {held} staff relationship(s) hold one presentation of "
            "a module, and the earlier release would read them over every presentation of it. Import the "
            "relationships without presentations first; nothing changed."
        )
    _primary_key(KEY)
    with op.batch_alter_table(TABLE) as batch:
        batch.drop_column("presentation_id")
