"""Metric history: every few seconds, one resource sample per running sandbox goes to the store,
and its egress counters to the usage row. `get_metrics(start, end)` reads this history (E2B keeps
one too), and the dashboard's CPU and memory columns read the newest sample.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone
from typing import Any

from corral.api.meter import Meter
from corral.lifecycle import SandboxNotFound, SandboxService
from corral.store import MetricSample, SandboxState

log = logging.getLogger("corral.api.metrics")

RETENTION = timedelta(days=7)
PRUNE_EVERY = 720  # samples rounds between prunes (an hour at the default 5 s)


def sample_row(sandbox_id: str, doc: dict[str, Any]) -> MetricSample:
    return MetricSample(
        sandbox_id=sandbox_id, at=datetime.strptime(doc["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc), cpu_count=doc["cpuCount"],
        cpu_used_pct=doc["cpuUsedPct"], mem_used=doc["memUsed"], mem_total=doc["memTotal"],
        mem_cache=doc["memCache"], disk_used=doc["diskUsed"], disk_total=doc["diskTotal"],
    )


def sample_doc(row: MetricSample) -> dict[str, Any]:
    """E2B's SandboxMetric shape."""
    return {
        "timestamp": row.at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "timestampUnix": int(row.at.timestamp()),
        "cpuCount": row.cpu_count, "cpuUsedPct": row.cpu_used_pct, "memUsed": row.mem_used,
        "memTotal": row.mem_total, "memCache": row.mem_cache, "diskUsed": row.disk_used, "diskTotal": row.disk_total,
    }


class MetricsHistory:
    def __init__(self, service: SandboxService, meter: Meter, interval_s: float) -> None:
        self.service = service
        self.meter = meter
        self.interval_s = interval_s
        self.latest: dict[str, dict[str, Any]] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.interval_s > 0:
            self._task = asyncio.create_task(self._run(), name="corral-metrics-history")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def forget(self, sandbox_id: str) -> None:
        self.latest.pop(sandbox_id, None)

    async def _run(self) -> None:
        rounds = 0
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.sample_all()
                rounds += 1
                if rounds % PRUNE_EVERY == 0:
                    await asyncio.to_thread(self.service.metering.db.prune_samples, datetime.now(timezone.utc) - RETENTION)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the sampler must survive anything
                log.exception("sampling sandbox metrics failed")

    async def sample_all(self) -> None:
        rows = []
        for rec in self.service.list():
            if rec.state != SandboxState.RUNNING.value:
                continue
            try:
                doc = await self.meter.sample(rec.sandbox_id)
            except (SandboxNotFound, OSError, LookupError):
                continue  # gone between the list and the sample
            self.latest[rec.sandbox_id] = doc
            rows.append(sample_row(rec.sandbox_id, doc))
            await self.service.metering.egress(rec.sandbox_id, self.service.network_audit)
        if rows:
            self.service.metering.db.add_samples(rows)
