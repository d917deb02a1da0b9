"""Students' names folded again for search: Kazakh letters, Latin look-alikes and other scripts' digits.

A Cyrillic word's Kazakh letters fold as the Russian letters a Russian keyboard types for them, and
its Latin look-alikes as the Cyrillic letters they stand for (``schema.search_key``): a Kazakh
university's staff typing names on a Russian keyboard found 22 of 96 students. Digits of other
scripts read as 0 to 9. The directory's entries are folded again here.

Revision ID: 0020
Revises: 0019
Create Date: 2027-05-10 10:00:00
"""

from __future__ import annotations

from alembic import op

from waymark.service.db.refold import refold_search_names

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply."""
    refold_search_names(op.get_bind())


def downgrade() -> None:
    """Revert: nothing to undo (earlier folding read these letters as they were)."""
