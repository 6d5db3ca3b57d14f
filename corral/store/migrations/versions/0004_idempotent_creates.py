"""Idempotent creates: the sandbox each `Idempotency-Key` made, for 24 hours.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idempotent_creates",
        sa.Column("scope", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("body_hash", sa.String(64), nullable=False),
        sa.Column("sandbox_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_idempotent_creates_expires_at", "idempotent_creates", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotent_creates_expires_at", table_name="idempotent_creates")
    op.drop_table("idempotent_creates")
