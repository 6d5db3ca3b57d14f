"""Queries over the metering tables (see usage_models): the recorder writes through these, the
usage report, the logs route and the metrics history read through them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import delete, func, select

from corral.store.db import Store
from corral.store.usage_models import MetricSample, PoolEvent, SandboxEvent, UsageRecord

ENDED = "ended"


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class UsageStart:
    sandbox_id: str
    template: str
    template_id: str
    tier: str
    metadata: dict[str, str]
    cpu_count: int
    memory_mb: int
    from_pool: bool


class UsageStore:
    def __init__(self, store: Store) -> None:
        self._session = store.session

    # --- per-sandbox usage -----------------------------------------------------------------

    def start(self, s: UsageStart, at: datetime, extra: Iterable[SandboxEvent | PoolEvent] = ()) -> None:
        """`extra`: rows written in the same transaction (its log line, its pool hit): one commit
        on a create's path instead of one each."""
        with self._session() as db, db.begin():
            db.add_all(list(extra))
            if db.get(UsageRecord, s.sandbox_id) is not None:
                return
            db.add(UsageRecord(
                sandbox_id=s.sandbox_id, template=s.template, template_id=s.template_id, tier=s.tier,
                metadata_=dict(s.metadata), cpu_count=s.cpu_count, memory_mb=s.memory_mb, from_pool=s.from_pool,
                created_at=at, state="running", state_since=at, running_seconds=0.0, paused_seconds=0.0,
                egress_bytes_out=0, egress_bytes_in=0,
            ))

    def transition(self, sandbox_id: str, state: str, at: datetime, event: SandboxEvent | None = None) -> bool:
        """Close the current state's interval at `at` and enter `state` (running, paused or
        ended). False when the sandbox has no usage row or has ended already. `event`: a log
        line written in the same transaction when the transition happens."""
        with self._session() as db, db.begin():
            row = db.get(UsageRecord, sandbox_id)
            if row is None or row.state == ENDED:
                return False
            if event is not None:
                db.add(event)
            elapsed = max(0.0, (at - _aware(row.state_since)).total_seconds())
            if row.state == "running":
                row.running_seconds += elapsed
            elif row.state == "paused":
                row.paused_seconds += elapsed
            row.state, row.state_since = state, at
            if state == ENDED:
                row.ended_at = at
            return True

    def set_egress(self, sandbox_id: str, bytes_out: int, bytes_in: int) -> None:
        """Counters only grow: a reading lower than the stored one (a recreated nft counter) is kept
        as the larger value."""
        with self._session() as db, db.begin():
            row = db.get(UsageRecord, sandbox_id)
            if row is not None:
                row.egress_bytes_out = max(row.egress_bytes_out, bytes_out)
                row.egress_bytes_in = max(row.egress_bytes_in, bytes_in)

    def get(self, sandbox_id: str) -> UsageRecord | None:
        with self._session() as db:
            row = db.get(UsageRecord, sandbox_id)
            return _fix(row) if row else None

    def was_handed_out(self, sandbox_id: str) -> bool:
        with self._session() as db:
            return db.get(UsageRecord, sandbox_id) is not None

    def open_ids(self) -> set[str]:
        with self._session() as db:
            return set(db.scalars(select(UsageRecord.sandbox_id).where(UsageRecord.state != ENDED)))

    def created_between(self, since: datetime, until: datetime) -> list[UsageRecord]:
        with self._session() as db:
            q = (select(UsageRecord).where(UsageRecord.created_at >= since, UsageRecord.created_at < until)
                 .order_by(UsageRecord.created_at))
            return [_fix(r) for r in db.scalars(q)]

    # --- pools -------------------------------------------------------------------------------

    def pool_event(self, template: str, kind: str, at: datetime, seconds: float | None = None) -> None:
        with self._session() as db, db.begin():
            db.add(PoolEvent(template=template, kind=kind, at=at, seconds=seconds))

    def pool_summary(self, since: datetime, until: datetime) -> dict[str, dict[str, float]]:
        """Per template: hits, misses, refills and the mean refill seconds in the window."""
        out: dict[str, dict[str, float]] = {}
        with self._session() as db:
            q = (select(PoolEvent.template, PoolEvent.kind, func.count(), func.avg(PoolEvent.seconds))
                 .where(PoolEvent.at >= since, PoolEvent.at < until).group_by(PoolEvent.template, PoolEvent.kind))
            for template, kind, count, avg in db.execute(q):
                entry = out.setdefault(template, {"hits": 0, "misses": 0, "refills": 0, "refill_seconds_avg": 0.0})
                key = {"hit": "hits", "miss": "misses", "refill": "refills"}.get(kind)
                if key:
                    entry[key] = int(count)
                if kind == "refill" and avg is not None:
                    entry["refill_seconds_avg"] = round(float(avg), 4)
        return out

    # --- logs --------------------------------------------------------------------------------

    def log(self, sandbox_id: str, message: str, at: datetime, level: str = "info", **fields: str) -> None:
        with self._session() as db, db.begin():
            db.add(event(sandbox_id, message, at, level, **fields))

    def logs(self, sandbox_id: str, *, start: datetime | None = None, limit: int = 1000,
             backward: bool = False, level: str | None = None, search: str | None = None) -> list[SandboxEvent]:
        with self._session() as db:
            q = select(SandboxEvent).where(SandboxEvent.sandbox_id == sandbox_id)
            if start is not None:
                q = q.where(SandboxEvent.at < start) if backward else q.where(SandboxEvent.at >= start)
            if level:
                q = q.where(SandboxEvent.level == level)
            if search:
                q = q.where(SandboxEvent.message.contains(search, autoescape=True))
            order = (SandboxEvent.at.desc(), SandboxEvent.id.desc()) if backward else (SandboxEvent.at, SandboxEvent.id)
            rows = list(db.scalars(q.order_by(*order).limit(limit)))
            for r in rows:
                r.at = _aware(r.at)
            return rows

    # --- metrics history ---------------------------------------------------------------------

    def add_samples(self, samples: Iterable[MetricSample]) -> None:
        with self._session() as db, db.begin():
            db.add_all(list(samples))

    def samples(self, sandbox_id: str, start: datetime | None, end: datetime | None) -> list[MetricSample]:
        with self._session() as db:
            q = select(MetricSample).where(MetricSample.sandbox_id == sandbox_id)
            if start is not None:
                q = q.where(MetricSample.at >= start)
            if end is not None:
                q = q.where(MetricSample.at <= end)
            rows = list(db.scalars(q.order_by(MetricSample.at)))
            for r in rows:
                r.at = _aware(r.at)
            return rows

    def prune_samples(self, before: datetime) -> int:
        with self._session() as db, db.begin():
            return db.execute(delete(MetricSample).where(MetricSample.at < before)).rowcount or 0


def _fix(row: UsageRecord) -> UsageRecord:
    row.created_at = _aware(row.created_at)
    row.state_since = _aware(row.state_since)
    if row.ended_at is not None:
        row.ended_at = _aware(row.ended_at)
    return row


def event(sandbox_id: str, message: str, at: datetime, level: str = "info", **fields: str) -> SandboxEvent:
    """One line of a sandbox's log (`GET /sandboxes/{id}/logs`), to add in a transaction."""
    return SandboxEvent(sandbox_id=sandbox_id, at=at, level=level, message=message,
                        fields={k: str(v) for k, v in fields.items()})
