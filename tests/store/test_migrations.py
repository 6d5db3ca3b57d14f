"""Migrations: the schema they build is the models' schema, and old databases are upgraded in place."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from corral.store import Store, StoreError
from corral.store.migrate import HEAD, revisions
from corral.store.models import Base

FIXTURES = Path(__file__).with_name("fixtures")


def test_head_constant_matches_the_revision_files():
    assert revisions()[0] == HEAD


def test_migrated_schema_equals_the_models(store_location):
    """A model change without a migration fails here, on both databases."""
    store = Store(store_location)
    with store.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = [d for d in compare_metadata(ctx, Base.metadata) if not (d[0] == "remove_table" and d[1].name == "alembic_version")]
    store.engine.dispose()
    assert diff == []


def _load_fixture(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.executescript((FIXTURES / "corral-0.1.0-pre-migrations.sql").read_text())


def _dump(db: Path, table: str, order: str) -> dict[str, list]:
    """Column -> values, so columns a later revision adds do not hide a changed value."""
    with sqlite3.connect(db) as conn:
        cur = conn.execute(f"SELECT * FROM {table} ORDER BY {order}")
        names = [d[0] for d in cur.description]
        rows = cur.fetchall()
    return {name: [row[i] for row in rows] for i, name in enumerate(names)}


def _kept(before: dict[str, list], after: dict[str, list]) -> bool:
    return all(after.get(col) == values for col, values in before.items())


def test_database_from_before_migrations_is_upgraded_and_keeps_every_row(tmp_path):
    db = tmp_path / "corral.db"
    _load_fixture(db)
    sandboxes, keys = _dump(db, "sandboxes", "sandbox_id"), _dump(db, "api_keys", "key_hash")
    store = Store(db)
    assert _kept(sandboxes, _dump(db, "sandboxes", "sandbox_id")) and _kept(keys, _dump(db, "api_keys", "key_hash"))
    assert len(sandboxes["sandbox_id"]) == 4 and len(keys["key_hash"]) == 2
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEAD
    # What the server reads back from those rows, through the models.
    assert [r.sandbox_id for r in store.live()] == ["sbx0000", "sbx0001", "sbx0002"]
    paused = store.get("sbx0001")
    assert paused.network == {"allowOut": ["pypi.org"], "denyOut": ["0.0.0.0/0"]}
    assert paused.metadata_ == {"agent": "discovery", "n": 1} and paused.traffic_access_token == "trf1"
    assert paused.started_at == datetime(2026, 12, 1, 12, 0, 1, tzinfo=timezone.utc)
    assert store.get("sbx0003").kill_reason == "timeout"
    assert store.has_key("a" * 64) and [k.name for k in store.keys()] == ["first-run", "ci"]
    store.update("sbx0000", state="killed")
    assert store.used_slots() == {1, 2}
    store.engine.dispose()


def test_older_database_missing_later_columns_gains_them(tmp_path):
    """A database from before `traffic_access_token`, `network` and `public_traffic` existed."""
    db = tmp_path / "corral.db"
    _load_fixture(db)
    with sqlite3.connect(db) as conn:
        for col in ("traffic_access_token", "network", "public_traffic"):
            conn.execute(f"ALTER TABLE sandboxes DROP COLUMN {col}")
    store = Store(db)
    rec = store.get("sbx0001")
    assert rec is not None and rec.metadata_["n"] == 1 and rec.traffic_access_token is None
    assert rec.public_traffic is True, "rows that predate the column get the model's default"
    store.update("sbx0001", traffic_access_token="t", network={"allowOut": ["x.test"]})
    assert store.get("sbx0001").network == {"allowOut": ["x.test"]}
    store.engine.dispose()


def test_database_from_a_newer_corral_is_refused(store_location):
    store = Store(store_location)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    store.engine.dispose()
    with pytest.raises(StoreError, match="revision 9999, newer than this corral"):
        Store(store_location)


def test_upgrade_from_revision_0001_keeps_rows_on_both_databases(store_location):
    """A database at the previous revision (0001, before nodes) is brought to head on open."""
    from alembic import command

    from corral.store.engine import make_engine
    from corral.store.migrate import _config

    engine = make_engine(store_location)
    with engine.begin() as conn:
        command.upgrade(_config(conn), "0001")
        conn.execute(text(
            "INSERT INTO sandboxes (sandbox_id, template_id, client_id, state, tier, started_at, end_at, cpu_count,"
            " memory_mb, disk_mb, pids_max, uid_slot, workdir, envd_version, metadata, allow_internet_access,"
            " public_traffic, on_timeout) VALUES ('old', 'base', 'c', 'running', 'namespace', :t, :t, 1, 64, 64, 8,"
            " 7, '/x', '0.6.4', '{\"k\": \"v\"}', false, true, 'kill')"), {"t": datetime(2026, 12, 1, tzinfo=timezone.utc)})
        conn.execute(text("INSERT INTO api_keys VALUES ('h', 'n', 'p', :t)"), {"t": datetime(2026, 12, 1, tzinfo=timezone.utc)})
    engine.dispose()
    store = Store(store_location)
    rec = store.get("old")
    assert rec is not None and rec.metadata_ == {"k": "v"} and rec.node_id is None and rec.uid_slot == 7
    assert store.has_key("h") and store.nodes.list() == []
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEAD
    store.engine.dispose()
