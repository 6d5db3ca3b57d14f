"""The lifecycle's one entry point for metering: each call records one fact in the store.

Metering never decides a sandbox's fate: a failed write is logged and the lifecycle goes on. Pool
hits, misses and refill times are also kept as in-memory counters for Prometheus (the store has
the durable copy), so a scrape never queries the database.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any, Protocol

from corral.store import PoolEvent, Store, UsageStart, UsageStore
from corral.store.usage import event as usage_event
from corral.usage.prices import Prices
from corral.usage.report import build_report

log = logging.getLogger("corral.usage")


class Sandbox(Protocol):
    """What the recorder reads from a sandbox's record (corral.store.SandboxRecord has it all)."""

    sandbox_id: str
    template_id: str
    alias: str | None
    tier: str
    metadata_: dict
    cpu_count: int
    memory_mb: int


def _now() -> datetime:
    return datetime.now(timezone.utc)


class PoolCounters:
    def __init__(self) -> None:
        self.hits: dict[str, int] = defaultdict(int)
        self.misses: dict[str, int] = defaultdict(int)
        self.refills: dict[str, int] = defaultdict(int)
        self.refill_seconds: dict[str, float] = defaultdict(float)
        self.claim_seconds: dict[str, float] = defaultdict(float)


class UsageRecorder:
    def __init__(self, store: Store) -> None:
        self.db = UsageStore(store)
        self.pools = PoolCounters()
        self._pending_hits: dict[str, PoolEvent] = {}

    def _safely(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception:  # noqa: BLE001 - metering must never break a sandbox's lifecycle
            log.exception("recording %s failed", what)
            return None

    # --- sandboxes ---------------------------------------------------------------------------

    def started(self, rec: Sandbox, *, from_pool: bool) -> None:
        """A sandbox was handed to a client: it is metered from now (the create's answer), so
        the seconds are the ones the client had it, not the start-up it waited for."""
        start = UsageStart(sandbox_id=rec.sandbox_id, template=rec.alias or rec.template_id,
                           template_id=rec.template_id, tier=rec.tier, metadata=dict(rec.metadata_ or {}),
                           cpu_count=rec.cpu_count, memory_mb=rec.memory_mb, from_pool=from_pool)
        how = "claimed from the warm pool" if from_pool else "started"
        at = _now()   # last, so the metered start is as close as it can be to the create's answer
        line = usage_event(rec.sandbox_id, f"sandbox {how}: template {start.template}, tier {rec.tier}, "
                           f"{rec.cpu_count} vCPU, {rec.memory_mb} MB", at, template=start.template, tier=rec.tier)
        # One commit for the row, its log line and its pool hit: this is on the create's path.
        hit = self._pending_hits.pop(rec.sandbox_id, None)
        self._safely("a start", self.db.start, start, at, [line, *([hit] if hit is not None else [])])

    def paused(self, sandbox_id: str) -> None:
        if self._safely("a pause", self.db.transition, sandbox_id, "paused", _now()):
            self.log(sandbox_id, "sandbox paused")

    def resumed(self, sandbox_id: str) -> None:
        at = _now()   # (one commit for the transition and its log line: on the resume's path)
        self._safely("a resume", self.db.transition, sandbox_id, "running", at,
                     usage_event(sandbox_id, "sandbox resumed", at))

    async def egress(self, sandbox_id: str, audit: Callable[[str], Awaitable[dict[str, Any]]]) -> None:
        """Store the sandbox's egress byte counters, read through `audit` (the network's audit
        report): called while the sandbox is live, and once more just before it is torn down."""
        try:
            doc = await audit(sandbox_id)
        except Exception:  # noqa: BLE001
            log.exception("reading the egress counters of %s failed", sandbox_id)
            return
        if doc.get("attached"):
            self._safely("egress bytes", self.db.set_egress, sandbox_id, int(doc.get("bytes_out", 0)),
                         int(doc.get("bytes_in", 0)))

    def ended(self, sandbox_id: str, reason: str, at: datetime | None = None) -> None:
        """The sandbox's metering stops at `at`: when the kill was asked for (or now)."""
        hit = self._pending_hits.pop(sandbox_id, None)   # claimed, then failed before `started`
        if hit is not None:
            self._safely("a pool hit", self.db.pool_event, hit.template, "hit", hit.at, hit.seconds)
        if self._safely("an end", self.db.transition, sandbox_id, "ended", at or _now()):
            self.log(sandbox_id, f"sandbox killed: {reason}", level="warn" if reason != "killed" else "info",
                     reason=reason)

    def was_handed_out(self, sandbox_id: str) -> bool:
        """True once a sandbox was ever given to a client; a pool must never hand it out again.
        When the store cannot answer, the answer is yes (the safe one)."""
        answer = self._safely("a hand-out check", self.db.was_handed_out, sandbox_id)
        return True if answer is None else bool(answer)

    def log(self, sandbox_id: str, message: str, level: str = "info", **fields: str) -> None:
        self._safely("a log line", self.db.log, sandbox_id, message, _now(), level, **fields)

    # --- pools -------------------------------------------------------------------------------

    def pool_hit(self, template: str, seconds: float, sandbox_id: str | None = None) -> None:
        """With `sandbox_id`, the durable event waits for that sandbox's `started` (or its end)
        and shares its commit."""
        self.pools.hits[template] += 1
        self.pools.claim_seconds[template] += seconds
        if sandbox_id is None:
            self._safely("a pool hit", self.db.pool_event, template, "hit", _now(), seconds)
        else:
            self._pending_hits[sandbox_id] = PoolEvent(template=template, kind="hit", at=_now(), seconds=seconds)

    def pool_miss(self, template: str) -> None:
        self.pools.misses[template] += 1
        self._safely("a pool miss", self.db.pool_event, template, "miss", _now())

    def pool_refill(self, template: str, seconds: float) -> None:
        self.pools.refills[template] += 1
        self.pools.refill_seconds[template] += seconds
        self._safely("a pool refill", self.db.pool_event, template, "refill", _now(), seconds)

    # --- reading -----------------------------------------------------------------------------

    def report(self, *, since: datetime, until: datetime, by: str, prices: Prices) -> dict[str, Any]:
        now = _now()
        rows = self.db.created_between(since, until)
        return build_report(rows, since=since, until=until, by=by, prices=prices, now=now,
                            pools=self.db.pool_summary(since, until))
