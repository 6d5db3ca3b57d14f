"""Baseline: the sandboxes and api_keys tables as corral stored them before migrations existed.

Databases made by `create_all` before Alembic came in have these tables (some without the columns
added later) and no `alembic_version` row. This revision creates what is missing and adds the
missing columns, so such a database is upgraded in place and keeps every row; a new database
simply gets both tables. The column list is frozen here on purpose: later model changes are
later revisions, never edits to this one.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _sandbox_columns() -> list[sa.Column]:
    return [
        sa.Column("sandbox_id", sa.String(64), primary_key=True),
        sa.Column("template_id", sa.String(128), nullable=False),
        sa.Column("alias", sa.String(128), nullable=True),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("killed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("kill_reason", sa.String(64), nullable=True),
        sa.Column("cpu_count", sa.Integer(), nullable=False),
        sa.Column("memory_mb", sa.Integer(), nullable=False),
        sa.Column("disk_mb", sa.Integer(), nullable=False),
        sa.Column("pids_max", sa.Integer(), nullable=False),
        sa.Column("uid_slot", sa.Integer(), nullable=False),
        sa.Column("workdir", sa.Text(), nullable=False),
        sa.Column("envd_version", sa.String(16), nullable=False),
        sa.Column("envd_access_token", sa.String(128), nullable=True),
        sa.Column("traffic_access_token", sa.String(128), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("allow_internet_access", sa.Boolean(), nullable=False),
        sa.Column("public_traffic", sa.Boolean(), nullable=False),
        sa.Column("network", sa.JSON(), nullable=True),
        sa.Column("on_timeout", sa.String(8), nullable=False),
    ]


def _api_key_columns() -> list[sa.Column]:
    return [
        sa.Column("key_hash", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    ]


# Values for NOT NULL columns added to rows that predate them (the models' defaults).
_BACKFILL = {"public_traffic": sa.true(), "allow_internet_access": sa.false(), "on_timeout": "kill"}


def _ensure_table(name: str, columns: list[sa.Column], indexes: dict[str, list[str]]) -> None:
    insp = sa.inspect(op.get_bind())
    if not insp.has_table(name):
        op.create_table(name, *columns)
    else:
        have = {c["name"] for c in insp.get_columns(name)}
        for col in columns:
            if col.name in have:
                continue
            # Older servers added columns as nullable; do the same so existing rows stay valid,
            # and give them the value the model would have written.
            op.add_column(name, sa.Column(col.name, col.type, nullable=True))
            if col.name in _BACKFILL:
                op.execute(sa.table(name, sa.column(col.name)).update().values({col.name: _BACKFILL[col.name]}))
    present = {ix["name"] for ix in sa.inspect(op.get_bind()).get_indexes(name)}
    for ix_name, cols in indexes.items():
        if ix_name not in present:
            op.create_index(ix_name, name, cols)


def upgrade() -> None:
    _ensure_table("sandboxes", _sandbox_columns(),
                  {"ix_sandboxes_state": ["state"], "ix_sandboxes_end_at": ["end_at"]})
    _ensure_table("api_keys", _api_key_columns(), {})


def downgrade() -> None:
    op.drop_table("api_keys")
    op.drop_index("ix_sandboxes_end_at", table_name="sandboxes")
    op.drop_index("ix_sandboxes_state", table_name="sandboxes")
    op.drop_table("sandboxes")
