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

from alembic import op

from waymark.service.db.refold import refold_search_names

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply."""
    refold_search_names(op.get_bind())


def downgrade() -> None:
    """Revert: nothing to undo (the folding of 0012 read the new letters as they were)."""
