"""The machine a result came from: numbers without it cannot be compared with anything."""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path


def _mem_total_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def _cgroup_version() -> str:
    root = Path("/sys/fs/cgroup")
    if (root / "cgroup.controllers").exists():
        return "v2"
    if (root / "memory").is_dir():
        return "v1"
    return "unknown"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


@dataclass(frozen=True)
class Machine:
    nproc: int
    mem_total_gib: float
    kernel: str
    python: str
    cgroups: str
    e2b_sdk: str
    date_utc: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def one_line(self) -> str:
        return (f"{self.nproc} CPUs, {self.mem_total_gib:.1f} GiB, Linux {self.kernel}, cgroups {self.cgroups}, "
                f"Python {self.python}, e2b {self.e2b_sdk}, {self.date_utc}")


def describe_machine() -> Machine:
    return Machine(
        nproc=len(os.sched_getaffinity(0)),
        mem_total_gib=_mem_total_bytes() / 2**30,
        kernel=platform.release(),
        python=platform.python_version(),
        cgroups=_cgroup_version(),
        e2b_sdk=_version("e2b"),
        date_utc=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ"),
    )
