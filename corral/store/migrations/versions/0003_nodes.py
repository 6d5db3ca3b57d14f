"""Nodes: machines that run sandboxes register and heartbeat here; each sandbox names its node.

Revision ID: 0003
Revises: 0002 (usage)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "nodes",
        sa.Column("node_id", sa.String(64), primary_key=True),
        sa.Column("advertise_url", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("tiers", sa.JSON(), nullable=False),
        sa.Column("templates", sa.JSON(), nullable=False),
        sa.Column("cpu_count", sa.Integer(), nullable=False),
        sa.Column("memory_mb", sa.Integer(), nullable=False),
        sa.Column("memory_free_mb", sa.Integer(), nullable=False),
        sa.Column("sandboxes", sa.Integer(), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_nodes_state", "nodes", ["state"])
    op.create_index("ix_nodes_heartbeat_at", "nodes", ["heartbeat_at"])
    # Existing rows keep NULL: they belong to the all-in-one server that made them.
    with op.batch_alter_table("sandboxes") as batch:
        batch.add_column(sa.Column("node_id", sa.String(64), nullable=True))
        batch.create_index("ix_sandboxes_node_id", ["node_id"])


def downgrade() -> None:
    with op.batch_alter_table("sandboxes") as batch:
        batch.drop_index("ix_sandboxes_node_id")
        batch.drop_column("node_id")
    op.drop_index("ix_nodes_heartbeat_at", table_name="nodes")
    op.drop_index("ix_nodes_state", table_name="nodes")
    op.drop_table("nodes")
