"""The store keeps what it has across upgrades that add columns."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

from corral.store import SandboxRecord, Store


def test_old_database_gains_new_columns_and_keeps_rows(tmp_path):
    db = tmp_path / "corral.db"
    store = Store(db)
    now = datetime.now(timezone.utc)
    store.add(SandboxRecord(sandbox_id="abc", template_id="base", client_id="c", state="running", tier="namespace",
                            started_at=now, end_at=now, cpu_count=1, memory_mb=64, disk_mb=64, pids_max=8,
                            uid_slot=0, workdir="/x", envd_version="0.6.4", metadata_={"k": "v"}))
    store.engine.dispose()
    with sqlite3.connect(db) as conn:  # simulate a database made before these columns existed
        conn.execute("ALTER TABLE sandboxes DROP COLUMN traffic_access_token")
        conn.execute("ALTER TABLE sandboxes DROP COLUMN network")
    store = Store(db)
    rec = store.get("abc")
    assert rec is not None and rec.metadata_ == {"k": "v"} and rec.traffic_access_token is None
    store.update("abc", traffic_access_token="t", network={"allowOut": ["x.test"]})
    assert store.get("abc").network == {"allowOut": ["x.test"]}
