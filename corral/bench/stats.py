"""Latency summaries: the handful of numbers a benchmark table shows for one measurement.

Percentiles use linear interpolation between closest ranks (the method numpy calls "linear"), so
p50 of an even-sized sample is the midpoint of the two middle values and small samples still give
a p95 that moves when the slowest runs move. Everything is in milliseconds because that is the
unit every target in the product brief is written in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of samples; raises on an empty sample rather than inventing one."""
    if not samples:
        raise ValueError("percentile of an empty sample")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = math.ceil(rank)
    if low == high:
        return ordered[low]
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Summary:
    """One row of the table: the latency distribution of one operation, in milliseconds."""

    name: str
    n: int
    p50_ms: float
    p95_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float

    def to_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def summarize(name: str, samples_s: Sequence[float]) -> Summary:
    """Summarise durations measured in seconds (what time.perf_counter differences give)."""
    if not samples_s:
        raise ValueError(f"no samples for {name!r}")
    ms = [s * 1000.0 for s in samples_s]
    return Summary(
        name=name,
        n=len(ms),
        p50_ms=percentile(ms, 50),
        p95_ms=percentile(ms, 95),
        mean_ms=sum(ms) / len(ms),
        min_ms=min(ms),
        max_ms=max(ms),
    )
