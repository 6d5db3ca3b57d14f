"""Metering: sandbox_usage, pool_events, sandbox_events (logs) and sandbox_metrics (history).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sandbox_usage",
        sa.Column("sandbox_id", sa.String(64), primary_key=True),
        sa.Column("template", sa.String(128), nullable=False),
        sa.Column("template_id", sa.String(128), nullable=False),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("cpu_count", sa.Integer(), nullable=False),
        sa.Column("memory_mb", sa.Integer(), nullable=False),
        sa.Column("from_pool", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("state_since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("running_seconds", sa.Float(), nullable=False),
        sa.Column("paused_seconds", sa.Float(), nullable=False),
        sa.Column("egress_bytes_out", sa.BigInteger(), nullable=False),
        sa.Column("egress_bytes_in", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_sandbox_usage_template", "sandbox_usage", ["template"])
    op.create_index("ix_sandbox_usage_created_at", "sandbox_usage", ["created_at"])
    op.create_table(
        "pool_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("template", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=True),
    )
    op.create_index("ix_pool_events_at", "pool_events", ["at"])
    op.create_table(
        "sandbox_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("sandbox_id", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("level", sa.String(8), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
    )
    op.create_index("ix_sandbox_events_sandbox_id", "sandbox_events", ["sandbox_id"])
    op.create_table(
        "sandbox_metrics",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("sandbox_id", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cpu_count", sa.Integer(), nullable=False),
        sa.Column("cpu_used_pct", sa.Float(), nullable=False),
        sa.Column("mem_used", sa.BigInteger(), nullable=False),
        sa.Column("mem_total", sa.BigInteger(), nullable=False),
        sa.Column("mem_cache", sa.BigInteger(), nullable=False),
        sa.Column("disk_used", sa.BigInteger(), nullable=False),
        sa.Column("disk_total", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_sandbox_metrics_sandbox_id", "sandbox_metrics", ["sandbox_id"])


def downgrade() -> None:
    for name in ("sandbox_metrics", "sandbox_events", "pool_events", "sandbox_usage"):
        op.drop_table(name)
