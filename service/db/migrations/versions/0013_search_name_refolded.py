"""Students' names folded again for search: letters Unicode does not decompose now fold too.

``folding.folded`` read "Łukasz", "Søren" or "Đặng" with the stroke kept, so staff typing "lukasz",
"Soren" or "Dang", as names are written in e-mails and on paper, found nobody, and "Michal" found
Michalski but not Michał (a Polish university's staff). Names written from now on fold to their base
letters; the entries already in the directory are folded again here.

Revision ID: 0013
Revises: 0012
Create Date: 2027-04-20 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from waymark.service.db.schema import search_key

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply."""
    directory = sa.table(
        "student_directory",
        sa.column("student_id", sa.String),
        sa.column("display_name", sa.String),
        sa.column("preferred_name", sa.String),
        sa.column("search_name", sa.String),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(
            directory.c.student_id,
            directory.c.display_name,
            directory.c.preferred_name,
            directory.c.search_name,
        )
    )
    changed = [
        {"key": s, "refolded": folded} for s, d, p, before in rows if (folded := search_key(d, p)) != before
    ]
    if changed:
        bind.execute(
            directory.update()
            .where(directory.c.student_id == sa.bindparam("key"))
            .values(search_name=sa.bindparam("refolded")),
            changed,
        )


def downgrade() -> None:
    """Revert: nothing to undo (the folding of 0012 read the new letters as they were)."""
