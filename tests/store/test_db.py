"""The store's queries behave the same on SQLite and PostgreSQL (each test runs on both)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import text

from corral.store import SandboxRecord, SandboxState, Store
from corral.store.migrate import HEAD

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


def record(sandbox_id: str, state: str = "running", slot: int = 0, **kw: object) -> SandboxRecord:
    fields: dict[str, object] = dict(
        sandbox_id=sandbox_id, template_id="base", client_id="c", state=state, tier="namespace",
        started_at=T0, end_at=T0 + timedelta(minutes=5), cpu_count=1, memory_mb=64, disk_mb=64, pids_max=8,
        uid_slot=slot, workdir="/x", envd_version="0.6.4", metadata_={"agent": "discovery"})
    fields.update(kw)
    return SandboxRecord(**fields)


def test_sandbox_round_trip_keeps_types(store_location):
    store = Store(store_location)
    store.add(record("a", metadata_={"k": "v", "n": 1}, network={"allowOut": ["pypi.org"]},
                     allow_internet_access=True, public_traffic=False))
    got = store.get("a")
    assert got is not None
    assert got.metadata_ == {"k": "v", "n": 1} and got.network == {"allowOut": ["pypi.org"]}
    assert got.allow_internet_access is True and got.public_traffic is False and got.on_timeout == "kill"
    assert got.started_at == T0 and got.started_at.tzinfo is not None
    assert store.get("missing") is None
    store.engine.dispose()


def test_live_states_slots_and_updates(store_location):
    store = Store(store_location)
    for i, state in enumerate(["running", "paused", "pooled", "starting", "killed"]):
        store.add(record(f"s{i}", state=state, slot=i, started_at=T0 + timedelta(seconds=i)))
    assert [r.sandbox_id for r in store.live()] == ["s0", "s1", "s2", "s3"]
    assert [r.sandbox_id for r in store.live([SandboxState.PAUSED])] == ["s1"]
    assert store.used_slots() == {0, 1, 2, 3}
    assert store.get_live("s4") is None and store.get_live("s0") is not None
    killed_at = T0 + timedelta(minutes=1)
    updated = store.update("s0", state="killed", killed_at=killed_at, kill_reason="api")
    assert updated is not None and updated.killed_at == killed_at
    assert store.get("s0").state == "killed" and store.used_slots() == {1, 2, 3}
    assert store.update("nope", state="killed") is None
    store.engine.dispose()


def test_api_keys(store_location):
    store = Store(store_location)
    store.add_key("h1", "first-run", "e2b_1111")
    store.add_key("h2", "ci", "e2b_2222")
    assert store.has_key("h1") and not store.has_key("h3")
    assert [k.name for k in store.keys()] == ["first-run", "ci"]
    assert store.keys()[0].created_at.tzinfo is not None or store.engine.dialect.name == "sqlite"
    assert store.remove_key("ci") == 1 and store.remove_key("e2b_1111") == 1 and store.keys() == []
    store.engine.dispose()


def test_reopening_keeps_rows_and_does_not_migrate_again(store_location):
    store = Store(store_location)
    store.add(record("kept"))
    store.add_key("h", "k", "p")
    store.engine.dispose()
    again = Store(store_location)
    assert again.get("kept") is not None and again.has_key("h")
    with again.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [HEAD]
    again.engine.dispose()


def test_stores_on_one_database_see_each_other(store_location):
    """Two processes (API replicas, or the server and `corral keys`) share state through it."""
    one, two = Store(store_location), Store(store_location)
    one.add_key("shared", "k", "p")
    two.add(record("from-two"))
    assert two.has_key("shared") and one.get("from-two") is not None
    one.engine.dispose()
    two.engine.dispose()


def test_concurrent_first_opens_migrate_once(store_location):
    """Replicas starting together on an empty database: one migrates, the others wait for it."""
    if isinstance(store_location, Path):
        pytest.skip("SQLite is one machine's store; concurrent first starts are a PostgreSQL case")
    errors: list[BaseException] = []
    stores: list[Store] = []

    def open_store() -> None:
        try:
            stores.append(Store(store_location))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == [] and len(stores) == 4
    stores[0].add(record("x"))
    assert all(s.get("x") is not None for s in stores)
    for s in stores:
        s.engine.dispose()
