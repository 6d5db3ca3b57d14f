"""Engine set-up and the handful of queries the server needs.

Calls are synchronous: each is a sub-millisecond SQLite statement, cheaper than a thread hop.
The database file is created 0600 inside a 0700 data dir because it holds sandbox access tokens.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import create_engine, event, inspect, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from corral.store.models import ApiKey, Base, SandboxRecord, SandboxState


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _aware(dt: datetime) -> datetime:
    """SQLite drops tzinfo; everything we store is UTC."""
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


class Store:
    def __init__(self, url: str | Path) -> None:
        if isinstance(url, Path):
            url.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(url.parent, 0o700)
            if not url.exists():
                url.touch(mode=0o600)
            url = f"sqlite:///{url}"
        self.engine: Engine = create_engine(url, future=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        Base.metadata.create_all(self.engine)
        _add_missing_columns(self.engine)
        self._session = sessionmaker(self.engine, expire_on_commit=False)

    def session(self) -> Session:
        return self._session()

    # --- sandboxes -------------------------------------------------------------------------

    def add(self, rec: SandboxRecord) -> None:
        with self.session() as s, s.begin():
            s.add(rec)

    def get(self, sandbox_id: str) -> SandboxRecord | None:
        with self.session() as s:
            rec = s.get(SandboxRecord, sandbox_id)
            return _fix(rec) if rec else None

    def get_live(self, sandbox_id: str) -> SandboxRecord | None:
        rec = self.get(sandbox_id)
        if rec is None or rec.state not in {st.value for st in SandboxState.live()}:
            return None
        return rec

    def update(self, sandbox_id: str, **fields: object) -> SandboxRecord | None:
        with self.session() as s, s.begin():
            rec = s.get(SandboxRecord, sandbox_id)
            if rec is None:
                return None
            for k, v in fields.items():
                setattr(rec, k, v)
        return _fix(rec)

    def live(self, states: Iterable[SandboxState] | None = None) -> list[SandboxRecord]:
        wanted = [st.value for st in (states or SandboxState.live())]
        with self.session() as s:
            rows = s.scalars(select(SandboxRecord).where(SandboxRecord.state.in_(wanted)).order_by(SandboxRecord.started_at, SandboxRecord.sandbox_id))
            return [_fix(r) for r in rows]

    def used_slots(self) -> set[int]:
        with self.session() as s:
            q = select(SandboxRecord.uid_slot).where(SandboxRecord.state.in_([st.value for st in SandboxState.live()]))
            return set(s.scalars(q))

    # --- api keys --------------------------------------------------------------------------

    def add_key(self, key_hash: str, name: str, prefix: str) -> None:
        with self.session() as s, s.begin():
            s.add(ApiKey(key_hash=key_hash, name=name, prefix=prefix, created_at=_utcnow()))

    def has_key(self, key_hash: str) -> bool:
        with self.session() as s:
            return s.get(ApiKey, key_hash) is not None

    def keys(self) -> list[ApiKey]:
        with self.session() as s:
            return list(s.scalars(select(ApiKey).order_by(ApiKey.created_at)))

    def remove_key(self, prefix_or_name: str) -> int:
        with self.session() as s, s.begin():
            rows = list(s.scalars(select(ApiKey).where((ApiKey.prefix == prefix_or_name) | (ApiKey.name == prefix_or_name))))
            for r in rows:
                s.delete(r)
            return len(rows)


def _fix(rec: SandboxRecord) -> SandboxRecord:
    rec.started_at = _aware(rec.started_at)
    rec.end_at = _aware(rec.end_at)
    if rec.killed_at is not None:
        rec.killed_at = _aware(rec.killed_at)
    return rec


def _add_missing_columns(engine: Engine) -> None:
    """Columns added since a database was created are added to it (all are nullable or have a
    default), so an upgraded server keeps every record it had."""
    insp = inspect(engine)
    with engine.begin() as conn:
        for table in Base.metadata.sorted_tables:
            have = {c["name"] for c in insp.get_columns(table.name)}
            for col in table.columns:
                if col.name not in have:
                    ddl = col.type.compile(dialect=engine.dialect)
                    conn.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{col.name}" {ddl}'))


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()
