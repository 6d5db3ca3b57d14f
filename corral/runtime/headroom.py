"""How a sandbox's limits are split between its daemon and its user processes, and which CPUs
it gets.

User processes (everything envd or the interpreter starts) live in a child cgroup ``user``
whose memory and pids limits sit below the sandbox's, so a fork bomb or a memory bomb hits the
child's limit while envd (in the sandbox's own cgroup) still has room to fork and allocate:
the next command starts. The reserve is small, so the user still gets about the size asked
for, as in a VM whose kernel keeps a little for itself.

A sandbox of N CPUs gets a cpuset of N CPUs (so ``nproc`` and the affinity mask say N), chosen
among the host's least-used CPUs so sandboxes spread over the machine instead of piling on CPU 0.
"""

from __future__ import annotations

import glob

import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from corral.runtime.base import Limits

MiB = 1024 * 1024
CGROUP_ROOT = Path("/sys/fs/cgroup")
USER_CGROUP = "user"
# cgroup v1 cpu.shares / v2 cpu.weight of the user child next to envd's default (1024 / 100):
# under contention envd gets two thirds of the sandbox's CPU quota, never starved by a busy loop.
USER_CPU_SHARES = 512
USER_CPU_WEIGHT = 50


@dataclass(frozen=True)
class UserLimits:
    memory_bytes: int
    pids_max: int
    daemon_memory_bytes: int   # what envd keeps (v2: its memory.min)


def user_limits(limits: Limits) -> UserLimits:
    total = limits.memory_mb * MiB
    reserve = min(max(total // 16, 16 * MiB), 64 * MiB)
    pids_reserve = min(max(limits.pids_max // 8, 16), 64)
    return UserLimits(memory_bytes=max(total - reserve, total // 2),
                      pids_max=max(limits.pids_max - pids_reserve, limits.pids_max // 2, 1),
                      daemon_memory_bytes=reserve)


def parse_cpu_list(text: str) -> list[int]:
    """"0-3,6" -> [0, 1, 2, 3, 6] (the kernel's cpu list format)."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus


def format_cpu_list(cpus: Iterable[int]) -> str:
    return ",".join(str(c) for c in sorted(set(cpus)))


def choose_cpus(available: list[int], in_use: Iterable[list[int]], count: int) -> list[int]:
    """The ``count`` CPUs of ``available`` that the fewest sandboxes use (lowest number first on a
    tie); all of them when ``count`` is as large as the host."""
    if count >= len(available):
        return sorted(available)
    load: Counter[int] = Counter({cpu: 0 for cpu in available})
    for cpus in in_use:
        for cpu in cpus:
            if cpu in load:
                load[cpu] += 1
    return sorted(sorted(available, key=lambda cpu: (load[cpu], cpu))[:count])


def host_cpus(root: Path = CGROUP_ROOT) -> list[int]:
    """The CPUs a sandbox may be given: the root cpuset's (v1 or v2), else our own affinity."""
    for f in (root / "cpuset" / "cpuset.effective_cpus", root / "cpuset.cpus.effective"):
        try:
            cpus = parse_cpu_list(f.read_text())
        except (OSError, ValueError):
            continue
        if cpus:
            return cpus
    return sorted(os.sched_getaffinity(0))


def cpusets_in_use(root: Path = CGROUP_ROOT) -> list[list[int]]:
    """The cpusets of every corral sandbox on the host, either tier, any server (v1 and v2)."""
    out: list[list[int]] = []
    for pattern in ("cpuset/corral*/*/cpuset.cpus", "corral*/*/cpuset.cpus"):
        # glob.glob, not Path.glob: other servers remove their groups while we scan, and
        # Path.glob (3.11) raises FileNotFoundError for a directory that vanished mid-walk.
        for f in map(Path, glob.glob(str(root / pattern))):
            try:
                cpus = parse_cpu_list(f.read_text())
            except (OSError, ValueError):
                continue
            if cpus:
                out.append(cpus)
    return out


def host_mems(root: Path = CGROUP_ROOT) -> str:
    """The memory nodes a cpuset needs beside its CPUs ("" where there is no cpuset)."""
    for f in (root / "cpuset" / "cpuset.effective_mems", root / "cpuset.mems.effective"):
        try:
            text = f.read_text().strip()
        except OSError:
            continue
        if text:
            return text
    return ""
