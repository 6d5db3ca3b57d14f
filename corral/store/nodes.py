"""The node registry: how API replicas and node agents find each other through the database.

A node agent registers at start (an upsert: a restarted agent takes its old row back, with the
sandboxes still pointing at it) and heartbeats every few seconds with its free capacity. Any API
replica may run `mark_lost`; it is one UPDATE ... RETURNING with the staleness condition in its
WHERE clause, so replicas doing it at the same moment agree and never flip a node that just
heartbeated. A
lost node's heartbeat is refused (returns False) until it registers again, which is when it
reconciles its sandboxes with the store.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from corral.store.models import NodeRecord, NodeState, SandboxRecord, SandboxState


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class NodeInfo:
    """What a node agent reports about itself when it registers."""

    node_id: str
    advertise_url: str
    version: str
    cpu_count: int
    memory_mb: int
    memory_free_mb: int
    tiers: tuple[str, ...] = ("namespace",)
    templates: tuple[str, ...] = field(default_factory=tuple)


class NodeRegistry:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._session = sessions

    def register(self, info: NodeInfo, *, now: datetime | None = None) -> NodeRecord:
        now = now or _utcnow()
        with self._session() as s, s.begin():
            rec = s.get(NodeRecord, info.node_id)
            if rec is None:
                rec = NodeRecord(node_id=info.node_id, registered_at=now)
                s.add(rec)
            rec.advertise_url = info.advertise_url
            rec.version = info.version
            rec.cpu_count, rec.memory_mb, rec.memory_free_mb = info.cpu_count, info.memory_mb, info.memory_free_mb
            rec.tiers, rec.templates = list(info.tiers), list(info.templates)
            rec.state = NodeState.READY.value
            rec.heartbeat_at = now
            rec.sandboxes = self._count_live(s, info.node_id)
        return _fix(rec)

    def heartbeat(self, node_id: str, *, memory_free_mb: int, sandboxes: int,
                  templates: Iterable[str] | None = None, now: datetime | None = None) -> bool:
        """Record a heartbeat; False when the node is unknown or was marked lost (re-register)."""
        values: dict[str, object] = {"heartbeat_at": now or _utcnow(), "memory_free_mb": memory_free_mb,
                                     "sandboxes": sandboxes}
        if templates is not None:
            values["templates"] = list(templates)
        with self._session() as s, s.begin():
            res = s.execute(update(NodeRecord)
                            .where(NodeRecord.node_id == node_id, NodeRecord.state != NodeState.LOST.value)
                            .values(**values))
            return res.rowcount == 1

    def mark_lost(self, grace_s: float, *, now: datetime | None = None) -> list[str]:
        """Mark every node silent for longer than `grace_s` as lost; return their ids."""
        cutoff = (now or _utcnow()) - timedelta(seconds=grace_s)
        stale = (NodeRecord.heartbeat_at < cutoff) & (NodeRecord.state != NodeState.LOST.value)
        with self._session() as s, s.begin():
            res = s.execute(update(NodeRecord).where(stale).values(state=NodeState.LOST.value)
                            .returning(NodeRecord.node_id))
            return sorted(res.scalars())

    def set_state(self, node_id: str, state: NodeState) -> bool:
        with self._session() as s, s.begin():
            res = s.execute(update(NodeRecord).where(NodeRecord.node_id == node_id).values(state=state.value))
            return res.rowcount == 1

    def get(self, node_id: str) -> NodeRecord | None:
        with self._session() as s:
            rec = s.get(NodeRecord, node_id)
            return _fix(rec) if rec else None

    def list(self, states: Iterable[NodeState] | None = None) -> list[NodeRecord]:
        q = select(NodeRecord).order_by(NodeRecord.node_id)
        if states is not None:
            q = q.where(NodeRecord.state.in_([st.value for st in states]))
        with self._session() as s:
            return [_fix(r) for r in s.scalars(q)]

    def sandboxes_on(self, node_id: str) -> list[SandboxRecord]:
        live = [st.value for st in SandboxState.live()]
        with self._session() as s:
            q = (select(SandboxRecord).where(SandboxRecord.node_id == node_id, SandboxRecord.state.in_(live))
                 .order_by(SandboxRecord.started_at, SandboxRecord.sandbox_id))
            out = list(s.scalars(q))
        for rec in out:
            rec.started_at, rec.end_at = _aware(rec.started_at), _aware(rec.end_at)
        return out

    def live_counts(self) -> dict[str, int]:
        """Live sandboxes per node, from the rows themselves (fresher than heartbeats: a row is
        written when a create starts), which placement balances by."""
        live = [st.value for st in SandboxState.live()]
        q = (select(SandboxRecord.node_id, func.count()).where(SandboxRecord.node_id.is_not(None),
                                                                SandboxRecord.state.in_(live))
             .group_by(SandboxRecord.node_id))
        with self._session() as s:
            return {node: int(n) for node, n in s.execute(q)}

    @staticmethod
    def _count_live(s: Session, node_id: str) -> int:
        live = [st.value for st in SandboxState.live()]
        q = select(func.count()).select_from(SandboxRecord).where(SandboxRecord.node_id == node_id,
                                                                  SandboxRecord.state.in_(live))
        return int(s.scalar(q) or 0)


def _fix(rec: NodeRecord) -> NodeRecord:
    rec.registered_at = _aware(rec.registered_at)
    rec.heartbeat_at = _aware(rec.heartbeat_at)
    return rec
