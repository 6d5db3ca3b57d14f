"""The handful of queries the server needs, over SQLite (one machine) or PostgreSQL (many).

Calls are synchronous: on SQLite each is a sub-millisecond statement, cheaper than a thread hop;
on PostgreSQL each is one round trip on a pooled connection. Opening a store applies any pending
schema migration first (see `migrate`), so every process sees the schema its code expects.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from corral.store.engine import make_engine
from corral.store.migrate import upgrade
from corral.store.models import ApiKey, SandboxRecord, SandboxState
from corral.store.idempotency import IdempotencyKeys
from corral.store.nodes import NodeRegistry
from corral.store.volumes import VolumeRows, claim


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _aware(dt: datetime) -> datetime:
    """SQLite drops tzinfo; everything we store is UTC."""
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


class Store:
    """`location` is a SQLite file path or a database URL (`postgresql://user@host:port/db`).

    `node_id` names the node agent this process is (None: an all-in-one server, which owns the rows
    no node owns). What acts on sandboxes (`get_live`, `owned`, `used_slots`) sees only this
    process's own rows, so a node never adopts, reaps or kills another node's sandbox; `get` and
    `live` see every row (listing is cluster-wide)."""

    def __init__(self, location: str | Path, *, node_id: str | None = None) -> None:
        self.node_id = node_id
        self.engine: Engine = make_engine(location)
        try:
            upgrade(self.engine)
        except Exception:
            self.engine.dispose()
            raise
        self._session = sessionmaker(self.engine, expire_on_commit=False)
        self.nodes = NodeRegistry(self._session)
        self.idempotency = IdempotencyKeys(self._session)
        self.volumes = VolumeRows(self._session)

    def session(self) -> Session:
        return self._session()

    # --- sandboxes -------------------------------------------------------------------------

    def add(self, rec: SandboxRecord, volumes: Iterable[tuple[str, str]] = ()) -> None:
        """Add a sandbox's row with its (volume_id, path) mounts, in one transaction: a mount of a
        volume another node holds (`volumes.claim`) leaves no row behind."""
        with self.session() as s, s.begin():
            s.add(rec)
            if volumes := list(volumes):
                s.flush()
                claim(s, rec.sandbox_id, rec.node_id, volumes)

    def get(self, sandbox_id: str) -> SandboxRecord | None:
        with self.session() as s:
            rec = s.get(SandboxRecord, sandbox_id)
            return _fix(rec) if rec else None

    def get_live(self, sandbox_id: str) -> SandboxRecord | None:
        """A live sandbox this process owns (another node's is None here)."""
        rec = self.get(sandbox_id)
        if rec is None or rec.state not in {st.value for st in SandboxState.live()} or rec.node_id != self.node_id:
            return None
        return rec

    def _mine(self):  # type: ignore[no-untyped-def]
        return (SandboxRecord.node_id.is_(None) if self.node_id is None
                else SandboxRecord.node_id == self.node_id)

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

    def owned(self, states: Iterable[SandboxState] | None = None) -> list[SandboxRecord]:
        """Like `live`, but only the sandboxes this process owns (what recovery and the reaper act on)."""
        wanted = [st.value for st in (states or SandboxState.live())]
        with self.session() as s:
            rows = s.scalars(select(SandboxRecord).where(SandboxRecord.state.in_(wanted), self._mine())
                             .order_by(SandboxRecord.started_at, SandboxRecord.sandbox_id))
            return [_fix(r) for r in rows]

    def used_slots(self) -> set[int]:
        """uid slots are per machine: only this process's own live rows hold one here."""
        with self.session() as s:
            q = select(SandboxRecord.uid_slot).where(SandboxRecord.state.in_([st.value for st in SandboxState.live()]),
                                                     self._mine())
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
