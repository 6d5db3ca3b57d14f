"""The spec's §8 tables from metered sandboxes: usage per agent type (sandboxes per day, average
duration, monthly hours) and the monthly cost estimate, plus a per-day series for charts.

A sandbox counts in the period it was created in, with all its seconds (a live one up to `now`),
which is how §8.2 counts ("sandboxes/day x average duration"). Monthly figures are the period's
totals scaled to a 30-day month. Cost prices the reservation (vCPUs and GiB given to the sandbox)
for its running seconds, as E2B bills; paused seconds use the paused rate (zero on E2B).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from corral.usage.prices import Prices

MONTH_DAYS = 30
BUILTIN_GROUPS = ("template", "tier")
UNSET = "(none)"


class Metered(Protocol):
    sandbox_id: str
    template: str
    tier: str
    metadata_: dict
    cpu_count: int
    memory_mb: int
    created_at: datetime
    state: str
    state_since: datetime
    running_seconds: float
    paused_seconds: float
    egress_bytes_out: int
    egress_bytes_in: int


@dataclass
class Totals:
    sandboxes: int = 0
    running_seconds: float = 0.0
    paused_seconds: float = 0.0
    vcpu_seconds: float = 0.0
    gib_seconds: float = 0.0
    egress_bytes: int = 0
    compute_cost: float = 0.0
    egress_cost: float = 0.0
    ids: list[str] = field(default_factory=list)

    def add(self, running: float, paused: float, row: Metered, prices: Prices) -> None:
        egress = row.egress_bytes_out + row.egress_bytes_in
        self.sandboxes += 1
        self.running_seconds += running
        self.paused_seconds += paused
        self.vcpu_seconds += running * row.cpu_count
        self.gib_seconds += running * row.memory_mb / 1024
        self.egress_bytes += egress
        self.compute_cost += prices.running_cost(running, row.cpu_count, row.memory_mb) + paused * prices.paused_per_second
        self.egress_cost += egress / (1 << 30) * prices.egress_per_gib
        self.ids.append(row.sandbox_id)

    def doc(self, key: str, days: float) -> dict[str, Any]:
        hours = self.running_seconds / 3600
        scale = MONTH_DAYS / days
        return {
            "key": key,
            "sandboxes": self.sandboxes,
            "sandboxes_per_day": round(self.sandboxes / days, 3),
            "avg_duration_s": round(self.running_seconds / self.sandboxes, 3) if self.sandboxes else 0.0,
            "running_seconds": round(self.running_seconds, 3),
            "paused_seconds": round(self.paused_seconds, 3),
            "running_hours": round(hours, 6),
            "monthly_hours": round(hours * scale, 3),
            "vcpu_hours": round(self.vcpu_seconds / 3600, 6),
            "gib_hours": round(self.gib_seconds / 3600, 6),
            "egress_bytes": self.egress_bytes,
            "cost": round(self.compute_cost + self.egress_cost, 6),
            "monthly_cost": round((self.compute_cost + self.egress_cost) * scale, 4),
            "sandbox_ids": list(self.ids),
        }


def seconds_of(row: Metered, until: datetime, now: datetime) -> tuple[float, float]:
    """(running, paused) seconds of one sandbox, counting its current state up to `now` (or
    `until` when the report ends earlier)."""
    running, paused = row.running_seconds, row.paused_seconds
    if row.state in ("running", "paused"):
        open_s = max(0.0, (min(now, until) - row.state_since).total_seconds())
        if row.state == "running":
            running += open_s
        else:
            paused += open_s
    return running, paused


def group_key(row: Metered, by: str) -> str:
    if by == "template":
        return row.template
    if by == "tier":
        return row.tier
    key = by.removeprefix("metadata.")
    return str((row.metadata_ or {}).get(key, UNSET))


def build_report(rows: list[Metered], *, since: datetime, until: datetime, by: str, prices: Prices,
                 now: datetime, pools: dict[str, dict[str, float]] | None = None) -> dict[str, Any]:
    if until <= since:
        raise ValueError("the report's end must be after its start")
    days = max((min(until, max(now, since + timedelta(seconds=1))) - since).total_seconds() / 86400, 1 / 86400)
    groups: dict[str, Totals] = defaultdict(Totals)
    daily: dict[tuple[str, str], Totals] = defaultdict(Totals)
    total = Totals()
    for row in rows:
        running, paused = seconds_of(row, until, now)
        key = group_key(row, by)
        for t in (groups[key], daily[(row.created_at.date().isoformat(), key)], total):
            t.add(running, paused, row, prices)
    total_doc = total.doc("total", days)
    monthly_cost = total_doc["monthly_cost"] + prices.base_per_month
    compute_monthly = round(total.compute_cost * MONTH_DAYS / days, 4)
    egress_monthly = round(total.egress_cost * MONTH_DAYS / days, 4)
    return {
        "since": since.isoformat(), "until": until.isoformat(), "days": round(days, 6), "by": by,
        "groups": [groups[k].doc(k, days) for k in sorted(groups)],
        "total": total_doc,
        "daily": [{"date": d, **daily[(d, k)].doc(k, 1.0)} for d, k in sorted(daily)],
        # §8.3: the month's cost by component.
        "cost_table": [
            {"component": f"Sandbox hours ({total_doc['monthly_hours']:,.1f} hrs/month)", "monthly_cost": compute_monthly},
            {"component": "Custom templates", "monthly_cost": 0.0, "note": "included"},
            {"component": "Data transfer", "monthly_cost": egress_monthly},
            {"component": "Plan base fee", "monthly_cost": round(prices.base_per_month, 4)},
            {"component": "Total", "monthly_cost": round(monthly_cost, 4)},
        ],
        "prices": prices.as_doc(),
        "pools": pools or {},
    }
