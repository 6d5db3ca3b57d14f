"""Measure create()/destroy() latency and idle memory of the namespace tier (not a test).

    .venv/bin/python tests/runtime/namespace/measure.py [N] [--envd]

Prints the median and p90 of create(), destroy(), and for idle sandboxes the private memory
of the init (Private_* from smaps_rollup) and the cgroup's memory usage.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from agent import AGENT_ARGV  # noqa: E402

from corral.runtime.base import SandboxSpec  # noqa: E402
from corral.runtime.namespace import NamespaceTier  # noqa: E402
from corral.runtime.namespace.tier import DEFAULT_STATE_DIR  # noqa: E402


def rootfs() -> Path:
    for cand in (os.environ.get("CORRAL_TEST_ROOTFS"), "/var/lib/corral/templates/base/rootfs",
                 "/srv/corral-scratch/rootfs"):
        if cand and Path(cand).is_dir():
            return Path(cand)
    raise SystemExit("no rootfs")


def private_kib(pid: int) -> int:
    total = 0
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                total += int(line.split()[1])
    return total


async def main(n: int, envd: bool) -> None:
    tier = NamespaceTier(state_dir=DEFAULT_STATE_DIR, cgroup_group="corral-measure",
                         init_argv=None if envd else AGENT_ARGV)
    await tier.start()
    base = Path(tempfile.mkdtemp(prefix="corral-measure-"))
    creates, destroys, handles = [], [], []
    try:
        for i in range(n):
            sid = f"measure{i:04d}"
            spec = SandboxSpec(sid, "base", rootfs(), base / sid, 1_000_000 + i * 65536)
            t = time.perf_counter()
            handles.append(await tier.create(spec))
            creates.append((time.perf_counter() - t) * 1000)
        await asyncio.sleep(1)
        priv = [private_kib(h.init_pid) for h in handles]
        cg = [tier.cgroups.stats(h.sandbox_id).memory_bytes / 1024 for h in handles]
    finally:
        for sid in await tier.leftovers():
            t = time.perf_counter()
            await tier.destroy(sid, base / sid)
            destroys.append((time.perf_counter() - t) * 1000)
        await tier.close()
        os.rmdir(base)

    def q(xs: list[float], p: float) -> float:
        return sorted(xs)[min(len(xs) - 1, int(len(xs) * p))]

    print(f"mode={'envd' if envd else 'exec agent'} n={n}")
    print(f"create  median {statistics.median(creates):.1f} ms  p90 {q(creates, .9):.1f} ms")
    print(f"destroy median {statistics.median(destroys):.1f} ms  p90 {q(destroys, .9):.1f} ms")
    print(f"init private memory median {statistics.median(priv) / 1024:.1f} MiB")
    print(f"cgroup memory (incl. page cache) median {statistics.median(cg) / 1024:.1f} MiB")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    asyncio.run(main(int(args[0]) if args else 20, "--envd" in sys.argv))
