"""Volumes: named persistent directories and which sandbox mounts which; and the lifecycle
fields a create may set besides on_timeout (the auto-pause mode, auto-resume).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "volumes",
        sa.Column("volume_id", sa.String(64), primary_key=True),
        sa.Column("team", sa.String(64), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("token", sa.String(128), nullable=False),
        sa.Column("size_mb", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("team", "name", name="uq_volumes_team_name"),
    )
    op.create_table(
        "volume_mounts",
        sa.Column("sandbox_id", sa.String(64), primary_key=True),
        sa.Column("path", sa.String(1024), primary_key=True),
        sa.Column("volume_id", sa.String(64), nullable=False),
    )
    op.create_index("ix_volume_mounts_volume_id", "volume_mounts", ["volume_id"])
    with op.batch_alter_table("sandboxes") as batch:
        batch.add_column(sa.Column("auto_pause_mode", sa.String(16), nullable=True))
        batch.add_column(sa.Column("auto_resume", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sandboxes") as batch:
        batch.drop_column("auto_resume")
        batch.drop_column("auto_pause_mode")
    op.drop_index("ix_volume_mounts_volume_id", table_name="volume_mounts")
    op.drop_table("volume_mounts")
    op.drop_table("volumes")
