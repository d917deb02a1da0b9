"""The student a page session reads as, kept beside the person's sign-in subject.

A student's records carry the id the institution's exports give them, or its pseudonym when the
imports pseudonymise; the identity provider's subject is neither (a red team found every student
right, from seeing their indicator to erasure, reaching nobody in a pseudonymised deployment). At
sign-in the service reads the student's number from the claim WAYMARK_STUDENT_ID_CLAIM names, puts
it through the imports' secret when one is set, and keeps the result here; a person who is also
staff still acts as staff under their subject.

Revision ID: 0010
Revises: 0009
Create Date: 2027-03-01 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply."""
    with op.batch_alter_table("web_sessions") as batch:
        batch.add_column(sa.Column("student_id", sa.String(64), nullable=True))


def downgrade() -> None:
    """Revert."""
    with op.batch_alter_table("web_sessions") as batch:
        batch.drop_column("student_id")
