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


def _dump(db: Path, table: str, order: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()


def test_database_from_before_migrations_is_upgraded_and_keeps_every_row(tmp_path):
    db = tmp_path / "corral.db"
    _load_fixture(db)
    before = _dump(db, "sandboxes", "sandbox_id"), _dump(db, "api_keys", "key_hash")
    store = Store(db)
    assert (_dump(db, "sandboxes", "sandbox_id"), _dump(db, "api_keys", "key_hash")) == before
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
