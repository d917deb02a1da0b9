"""Students' names folded again for search: Arabic letters written two ways now fold alike.

Teh marbuta and heh, alef maksura and yeh, the Persian and Urdu yeh and keheh, and tatweel
(``folding.folded``): an Egyptian university's staff typing فاطمه found none of its 14 فاطمة, and
مصطفى and مصطفي each found a different ten students. The directory's entries are folded again here.

Revision ID: 0016
Revises: 0015
Create Date: 2027-05-06 10:00:00
"""

from __future__ import annotations

from alembic import op

from waymark.service.db.refold import refold_search_names

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply."""
    refold_search_names(op.get_bind())


def downgrade() -> None:
    """Revert: nothing to undo (earlier folding read these letters as they were)."""
