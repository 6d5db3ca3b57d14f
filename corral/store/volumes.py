"""Rows of `volumes` and `volume_mounts`: which volumes a team has, and which sandbox mounts them.

"In use" is decided here, in one query: a volume is in use while a live sandbox (starting,
running, paused, pooled) has a mount row for it. A paused sandbox counts, because its resume
mounts the volume again.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from corral.store.models import SandboxRecord, SandboxState, VolumeMountRecord, VolumeRecord


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


class NameTaken(Exception):
    """A volume of that name exists already in the team."""


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
