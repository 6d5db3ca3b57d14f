"""Per-sandbox resource samples in E2B's `SandboxMetric` shape, read from the sandbox's cgroup.

CPU percent is the CPU time used since this sandbox's previous sample (or since it started),
divided by the wall time and the CPU count, like E2B reports it.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

from corral.lifecycle import SandboxService


class Meter:
    def __init__(self, service: SandboxService) -> None:
        self.service = service
        self._last: dict[str, tuple[float, int]] = {}

    async def sample(self, sandbox_id: str) -> dict[str, Any]:
        rec = self.service.get(sandbox_id)
        usage = await self.service.usage(sandbox_id)
        now = time.time()
        prev_t, prev_cpu = self._last.get(sandbox_id, (rec.started_at.timestamp(), 0))
        self._last[sandbox_id] = (now, usage.cpu_usage_usec)
        wall_usec = max(1.0, (now - prev_t) * 1e6)
        pct = 100.0 * max(0, usage.cpu_usage_usec - prev_cpu) / wall_usec / max(1, usage.cpu_count)
        stamp = datetime.fromtimestamp(now, timezone.utc)
        return {
            "timestamp": stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "timestampUnix": int(now),
            "cpuCount": usage.cpu_count,
            "cpuUsedPct": round(min(100.0, pct), 2),
            "memUsed": usage.memory_bytes,
            "memTotal": usage.memory_limit_bytes,
            "memCache": usage.memory_cache_bytes,
            "diskUsed": usage.disk_used_bytes,
            "diskTotal": usage.disk_total_bytes,
        }

    def forget(self, sandbox_id: str) -> None:
        self._last.pop(sandbox_id, None)
