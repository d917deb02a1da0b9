"""Trust: governance decisions in the database, a keyed and anchored access log, rights outcomes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 07:00:00

The access log's chain is keyed from this revision on (HMAC-SHA256 with a key that never enters the
database). Records already in the log keep their unkeyed digest and are verified as such: the anchor
row written here remembers how many there were, and the keyed chain continues from the last of them
(or, in a new database, from a random seed).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Apply."""
    op.create_table(
        "audit_anchor",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seed", sa.String(length=64), nullable=False),
        sa.Column("legacy_seq", _SEQ, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "model_decisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("model_version", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("bundle_sha256", sa.String(length=64), nullable=False),
        sa.Column("gate", sa.String(length=16), nullable=True),
        sa.Column("report_sha256", sa.String(length=64), nullable=True),
        sa.Column("policy_sha256", sa.String(length=64), nullable=True),
        sa.Column("audit_id", sa.Integer(), nullable=True),
        sa.Column("override_reason", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("recorded_by", sa.String(length=200), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["audit_id"], ["model_decisions.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("model_decisions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_model_decisions_version", ["model_name", "model_version", "id"], unique=False
        )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("client_request_id", sa.String(length=64), nullable=True))
    with op.batch_alter_table("rights_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("outcome", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("outcome_note", sa.Text(), nullable=True))
    _seed_chain()


def _seed_chain() -> None:
    """Anchor the keyed chain: after the existing records, or at a random seed in a new log."""
    conn = op.get_bind()
    head = conn.execute(sa.text("SELECT seq, hash FROM audit_head WHERE id = 1")).first()
    legacy_seq, start = (int(head[0]), str(head[1])) if head else (0, secrets.token_hex(32))
    conn.execute(
        sa.text("INSERT INTO audit_anchor (id, seed, legacy_seq, created_at) VALUES (1, :seed, :n, :at)"),
        {"seed": start, "n": legacy_seq, "at": datetime.now(UTC)},
    )
    if head is None:
        conn.execute(sa.text("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, :seed)"), {"seed": start})


def downgrade() -> None:
    """Revert."""
    with op.batch_alter_table("rights_requests", schema=None) as batch_op:
        batch_op.drop_column("outcome_note")
        batch_op.drop_column("outcome")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_column("client_request_id")
    with op.batch_alter_table("model_decisions", schema=None) as batch_op:
        batch_op.drop_index("ix_model_decisions_version")
    op.drop_table("model_decisions")
    op.drop_table("audit_anchor")
