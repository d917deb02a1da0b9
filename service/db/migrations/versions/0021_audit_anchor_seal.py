"""The access log's anchor sealed under the audit key: where its keyed records begin cannot be moved.

``audit_anchor.legacy_seq`` says which records (those written before the chain was keyed) are
checked with the old unkeyed digest. A red team with write access to the database, and no key,
rewrote the whole log with that digest, moved ``legacy_seq`` to its end, and `waymark access-log
verify` said "intact". ``seal`` is an HMAC of the seed and ``legacy_seq`` under the audit key, which
the owner writes (`waymark access-log seal`) for a log begun before the chain was keyed: unkeyed
records claimed without it, or a boundary moved after it, are reported and nothing more is appended.
A log begun keyed (``legacy_seq`` 0) needs no seal.

Revision ID: 0021
Revises: 0020
Create Date: 2027-05-20 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply."""
    with op.batch_alter_table("audit_anchor") as batch:
        batch.add_column(sa.Column("seal", sa.String(length=64), nullable=True))


def downgrade() -> None:
    """Revert."""
    with op.batch_alter_table("audit_anchor") as batch:
        batch.drop_column("seal")
