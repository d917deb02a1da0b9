"""A restriction of processing for a correction being weighed (GDPR Art. 18(1)(a)), beside an objection's.

A student who contests the accuracy of their data may ask for its processing to be restricted while
the DPO checks it. ``processing_restrictions`` held one row per student, an objection's; it now holds
one per request, with its ``ground`` (``objection`` or ``accuracy``): a student left out for a
correction being weighed may object too, and declining one leaves the other standing. The rows
written before this revision are objections.

The table is altered in place on PostgreSQL, so the grants the owner gave the service role on it
(``grants.sql``) stay; SQLite's batch mode copies it into a new table (SQLite has no grants).

Revision ID: 0022
Revises: 0021
Create Date: 2027-05-27 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

TABLE = "processing_restrictions"


def _primary_key(columns: list[str]) -> None:
    """Make ``columns`` the table's primary key (the table has its ``ground`` column when this runs)."""
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":  # the copy is made with the new key (a key set by batch warns)
        keyed = sa.Table(
            TABLE,
            sa.MetaData(),
            sa.Column("student_id", sa.String(64), primary_key="student_id" in columns),
            sa.Column("request_id", sa.Integer(), primary_key="request_id" in columns, nullable=False),
            sa.Column("since", sa.DateTime(timezone=True), nullable=False),
            sa.Column("upheld", sa.Boolean(), nullable=False),
            sa.Column("pseudonym_key", sa.String(64), nullable=True),
            sa.Column("ground", sa.String(16), nullable=False, server_default="objection"),
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
        batch.add_column(sa.Column("ground", sa.String(16), nullable=False, server_default="objection"))
    _primary_key(["student_id", "request_id"])


def downgrade() -> None:
    """Revert, where nothing would be misread: refused while a correction keeps a student left out.

    The earlier release reads every row as an objection, which neither the correction's decline nor its
    withdrawal would lift, and which would refuse the student's own objection as already made. Decide
    or withdraw those corrections first (or end their restriction): nothing is changed meanwhile.
    """
    bind = op.get_bind()
    held = bind.execute(sa.text(f"SELECT count(*) FROM {TABLE} WHERE ground <> 'objection'")).scalar()
    if held:
        raise RuntimeError(
            f"cannot go back before revision 0022: {held} restriction(s) of processing are held for a "
            "correction being weighed, which the earlier release would read as objections nobody could "
            "lift. Decide those corrections (or record them as reaching the data) first; nothing changed."
        )
    _primary_key(["student_id"])
    with op.batch_alter_table(TABLE) as batch:
        batch.drop_column("ground")
