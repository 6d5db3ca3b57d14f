"""Rows of `volumes` and `volume_mounts`: which volumes a team has, and which sandbox mounts them.

"In use" is decided here, in one query: a volume is in use while a live sandbox (starting,
running, paused, pooled) has a mount row for it. A paused sandbox counts, because its resume
mounts the volume again.

A volume's ext4 image may be mounted by one machine at a time (two kernels writing one
filesystem corrupt it), so in a cluster a volume belongs to the node whose live sandboxes mount
it, until the last of them ends: `claim` refuses a mount on any other node, under a row lock on
the volume so two nodes claiming a free volume at the same moment cannot both win, and
`holders` tells the API replicas where to place a create that mounts it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from corral.errors import Conflict
from corral.store.models import SandboxRecord, SandboxState, VolumeMountRecord, VolumeRecord


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


class NameTaken(Exception):
    """A volume of that name exists already in the team."""


class VolumeElsewhere(Conflict):
    """A volume is mounted by live sandboxes of another node (409: where they run, and why)."""

    def __init__(self, name: str, node_id: str | None, sandbox_ids: list[str]) -> None:
        where = f"node {node_id}" if node_id else "another server"
        super().__init__(f"volume {name!r} is mounted on {where} (by sandbox {', '.join(sandbox_ids[:5])}"
                         f"{', ...' if len(sandbox_ids) > 5 else ''}); a volume's filesystem is mounted by one "
                         "machine at a time, so its sandboxes must run on that node until they all end")
        self.volume = name
        self.node_id = node_id


def _live() -> list[str]:
    return [st.value for st in SandboxState.live()]


def claim(s: Session, sandbox_id: str, node_id: str | None, mounts: Iterable[tuple[str, str]]) -> None:
    """Record a sandbox's (volume_id, path) mounts in the open transaction `s`, which has added its
    row; refused (VolumeElsewhere) when a live sandbox of another node mounts one of the volumes."""
    mounts = list(mounts)
    ids = sorted({vid for vid, _ in mounts})
    # Claims of one volume take turns here (PostgreSQL; SQLite has one writer at a time anyway),
    # and the next statement's snapshot sees the claim that went first.
    s.execute(select(VolumeRecord.volume_id).where(VolumeRecord.volume_id.in_(ids))
              .order_by(VolumeRecord.volume_id).with_for_update()).all()
    others = s.execute(
        select(VolumeRecord.name, SandboxRecord.node_id, SandboxRecord.sandbox_id)
        .join(VolumeMountRecord, VolumeMountRecord.volume_id == VolumeRecord.volume_id)
        .join(SandboxRecord, SandboxRecord.sandbox_id == VolumeMountRecord.sandbox_id)
        .where(VolumeRecord.volume_id.in_(ids), SandboxRecord.state.in_(_live()),
               SandboxRecord.sandbox_id != sandbox_id, SandboxRecord.node_id.is_distinct_from(node_id))
        .order_by(VolumeRecord.name, SandboxRecord.sandbox_id)).all()
    if others:
        name, node, _ = others[0]
        raise VolumeElsewhere(name, node, [sid for n, nd, sid in others if n == name and nd == node])
    for volume_id, path in mounts:
        s.add(VolumeMountRecord(sandbox_id=sandbox_id, path=path, volume_id=volume_id))


class VolumeRows:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._session = sessions

    def add(self, rec: VolumeRecord) -> None:
        try:
            with self._session() as s, s.begin():
                s.add(rec)
        except IntegrityError as exc:
            raise NameTaken(rec.name) from exc

    def get(self, team: str, volume_id: str) -> VolumeRecord | None:
        with self._session() as s:
            rec = s.get(VolumeRecord, volume_id)
            return _fixed(rec) if rec is not None and rec.team == team else None

    def by_name(self, team: str, name: str) -> VolumeRecord | None:
        with self._session() as s:
            rec = s.scalars(select(VolumeRecord).where(VolumeRecord.team == team, VolumeRecord.name == name)).first()
            return _fixed(rec) if rec is not None else None

    def list(self, team: str) -> list[VolumeRecord]:
        with self._session() as s:
            rows = s.scalars(select(VolumeRecord).where(VolumeRecord.team == team)
                             .order_by(VolumeRecord.created_at, VolumeRecord.volume_id))
            return [_fixed(r) for r in rows]

    def remove(self, volume_id: str) -> bool:
        with self._session() as s, s.begin():
            return s.execute(delete(VolumeRecord).where(VolumeRecord.volume_id == volume_id)).rowcount > 0

    # --- mounts ---------------------------------------------------------------------------------

    def add_mounts(self, sandbox_id: str, mounts: Iterable[tuple[str, str]]) -> None:
        """Record (volume_id, path) pairs for a sandbox (before it starts, so a delete racing the
        start sees the volume in use)."""
        with self._session() as s, s.begin():
            for volume_id, path in mounts:
                s.add(VolumeMountRecord(sandbox_id=sandbox_id, path=path, volume_id=volume_id))

    def mounts_of(self, sandbox_id: str) -> list[tuple[str, str]]:
        with self._session() as s:
            rows = s.scalars(select(VolumeMountRecord).where(VolumeMountRecord.sandbox_id == sandbox_id)
                             .order_by(VolumeMountRecord.path))
            return [(r.volume_id, r.path) for r in rows]

    def drop_mounts(self, sandbox_id: str) -> None:
        with self._session() as s, s.begin():
            s.execute(delete(VolumeMountRecord).where(VolumeMountRecord.sandbox_id == sandbox_id))

    def holders(self, team: str, names: Iterable[str]) -> dict[str, set[str | None]]:
        """For each named volume that live sandboxes mount: the nodes they run on (one, unless
        rows predate the claim check)."""
        out: dict[str, set[str | None]] = {}
        with self._session() as s:
            rows = s.execute(
                select(VolumeRecord.name, SandboxRecord.node_id)
                .join(VolumeMountRecord, VolumeMountRecord.volume_id == VolumeRecord.volume_id)
                .join(SandboxRecord, SandboxRecord.sandbox_id == VolumeMountRecord.sandbox_id)
                .where(VolumeRecord.team == team, VolumeRecord.name.in_(list(names)),
                       SandboxRecord.state.in_(_live())).distinct())
            for name, node_id in rows:
                out.setdefault(name, set()).add(node_id)
        return out

    def ids_of(self, team: str, names: Iterable[str]) -> dict[str, str]:
        """name -> volume id, for the named volumes that exist."""
        with self._session() as s:
            rows = s.execute(select(VolumeRecord.name, VolumeRecord.volume_id)
                             .where(VolumeRecord.team == team, VolumeRecord.name.in_(list(names))))
            return {name: vid for name, vid in rows}

    def holder_of(self, volume_id: str) -> tuple[bool, set[str | None]]:
        """Whether the volume exists, and the nodes whose live sandboxes mount it."""
        with self._session() as s:
            if s.get(VolumeRecord, volume_id) is None:
                return False, set()
            rows = s.scalars(
                select(SandboxRecord.node_id)
                .join(VolumeMountRecord, VolumeMountRecord.sandbox_id == SandboxRecord.sandbox_id)
                .where(VolumeMountRecord.volume_id == volume_id, SandboxRecord.state.in_(_live())).distinct())
            return True, set(rows)

    def drop_dead_mounts(self) -> int:
        """Remove the rows of sandboxes that are not live any more (killed, or gone from the
        store): what a server killed with `kill -9` between a sandbox's end and its kill's
        `drop_mounts` left behind. Returns how many rows went."""
        live = [st.value for st in SandboxState.live()]
        with self._session() as s, s.begin():
            alive = select(SandboxRecord.sandbox_id).where(SandboxRecord.state.in_(live))
            return s.execute(delete(VolumeMountRecord)
                             .where(VolumeMountRecord.sandbox_id.not_in(alive))).rowcount or 0

    def users(self, volume_id: str) -> list[str]:
        """Live sandboxes that mount the volume."""
        live = [st.value for st in SandboxState.live()]
        with self._session() as s:
            q = (select(VolumeMountRecord.sandbox_id).join(SandboxRecord, SandboxRecord.sandbox_id == VolumeMountRecord.sandbox_id)
                 .where(VolumeMountRecord.volume_id == volume_id, SandboxRecord.state.in_(live)).distinct())
            return sorted(s.scalars(q))


def _fixed(rec: VolumeRecord) -> VolumeRecord:
    rec.created_at = _aware(rec.created_at)
    return rec
