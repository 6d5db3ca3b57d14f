"""Tier against tier, same run: the namespace tier (baseline) and the gVisor tier.

Drives each tier directly through the Tier interface with the real envd inside (no HTTP server in
between, so the rows isolate what the tier costs), one sandbox at a time:

    sudo .venv/bin/python benchmarks/tiers.py [--runs 5] [--template base] [--append docs/BENCHMARKS.md]
        [--tiers namespace,gvisor-systrap,gvisor-ptrace]   (gVisor on one platform each)

Rows: create (until envd accepts connections), create -> first command (`true` through envd's
process service), a later command round trip, idle memory charged to the sandbox's cgroup,
freeze + thaw, and for gVisor the memory checkpoint (pause to disk) and restore (resume), with
the checkpoint image's size.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from corral.wire.client import EnvdClient, login_shell  # noqa: E402
from corral.wire.handoff import EnvdConfig  # noqa: E402
from corral.runtime.base import Limits, SandboxSpec, Tier  # noqa: E402


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    if len(s) == 1:
        return s[0]
    k = (len(s) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def _client(sock: Path) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=str(sock)),
                             base_url="http://envd", timeout=120)


def _cgroup_memory(sandbox_id: str) -> int:
    for d in Path("/sys/fs/cgroup").glob(f"*/corral*/{sandbox_id}"):
        f = d / "memory.usage_in_bytes"
        if f.exists():
            return int(f.read_text())
    for d in Path("/sys/fs/cgroup").glob(f"corral*/{sandbox_id}"):
        f = d / "memory.current"
        if f.exists():
            return int(f.read_text())
    return 0


async def bench_tier(tier: Tier, rootfs: Path, base: Path, runs: int) -> dict[str, list[float]]:
    rows: dict[str, list[float]] = {}

    def add(name: str, value: float) -> None:
        rows.setdefault(name, []).append(value)

    await tier.start()
    for i in range(runs + 1):  # the first run warms caches and is not counted
        sid = f"bench{tier.name[:2]}{os.getpid()}x{i}"
        spec = SandboxSpec(sandbox_id=sid, template="bench", rootfs=rootfs,
                           workdir=base / tier.name / sid, uid_base=(1 << 30) + i * 65536,
                           limits=Limits(1, 512, 1024, 256),
                           payload_config=EnvdConfig(sandbox_id=sid, access_token="bench").to_bytes())
        t0 = time.perf_counter()
        handle = await tier.create(spec)
        t1 = time.perf_counter()
        try:
            async with _client(handle.envd_socket) as c:
                await EnvdClient(c, "bench").run(login_shell("true"))
                t2 = time.perf_counter()
                await EnvdClient(c, "bench").run(login_shell("true"))
                t3 = time.perf_counter()
            await asyncio.sleep(1.0)
            mem = _cgroup_memory(sid)
            t4 = time.perf_counter()
            await tier.freeze(sid)
            await tier.thaw(sid)
            t5 = time.perf_counter()
            counted = i > 0
            if counted:
                add("create (envd accepting)", (t1 - t0) * 1000)
                add("create -> first command", (t2 - t0) * 1000)
                add("command round trip", (t3 - t2) * 1000)
                add("idle memory, cgroup (MB)", mem / 1e6)
                add("freeze + thaw", (t5 - t4) * 1000)
            checkpoint = getattr(tier, "checkpoint", None)
            if checkpoint is not None:
                info = await checkpoint(sid, spec.workdir)
                t6 = time.perf_counter()
                handle = await tier.restore(sid, spec.workdir)  # type: ignore[attr-defined]
                async with _client(handle.envd_socket) as c:
                    await EnvdClient(c, "bench").run(login_shell("true"))
                t7 = time.perf_counter()
                if counted:
                    add("checkpoint (pause to disk)", info.seconds * 1000)
                    add("restore -> first command", (t7 - t6) * 1000)
                    add("checkpoint image (MB)", info.image_bytes / 1e6)
        finally:
            await tier.destroy(sid, spec.workdir)
    await tier.close()
    return rows


def render(results: dict[str, dict[str, list[float]]], runs: int, template: str) -> str:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    load = os.getloadavg()[0]
    lines = [f"## {now}: tiers side by side (benchmarks/tiers.py, template {template}, "
             f"{runs} runs each, load average {load:.1f} at the end)", "",
             "| row | " + " | ".join(f"{t} p50 | {t} p90" for t in results) + " |",
             "|---|" + "---|---|" * len(results)]
    names: list[str] = []
    for rows in results.values():
        names += [n for n in rows if n not in names]
    for name in names:
        cells = []
        for rows in results.values():
            v = rows.get(name)
            cells += ([f"{_pct(v, 0.5):.1f}", f"{_pct(v, 0.9):.1f}"] if v else ["-", "-"])
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Times in ms unless marked. Medians: "
                 + "; ".join(f"{t}: create {statistics.median(r['create (envd accepting)']):.0f} ms"
                             for t, r in results.items()) + ".")
    return "\n".join(lines) + "\n"


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--template", default="base")
    parser.add_argument("--templates-dir", default="/var/lib/corral/templates")
    parser.add_argument("--tiers", default="namespace,gvisor")
    parser.add_argument("--append", default=None, help="append the table to this markdown file")
    args = parser.parse_args()
    rootfs = Path(args.templates_dir) / args.template / "rootfs"
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="corral-tiers-") as tmp:
        digest = hashlib.sha256(tmp.encode()).hexdigest()[:8]
        for name in args.tiers.split(","):
            if name == "namespace":
                from corral.runtime.namespace import NamespaceTier
                tier: Tier = NamespaceTier(cgroup_group=f"corral-bench-{digest}")
            else:   # "gvisor", or "gvisor-ptrace" / "gvisor-systrap" for one platform
                from corral.runtime.gvisor import GVisorTier
                platform = name.partition("-")[2]
                if platform:
                    os.environ["CORRAL_RUNSC_PLATFORM"] = platform
                else:
                    os.environ.pop("CORRAL_RUNSC_PLATFORM", None)
                tier = GVisorTier(state_dir=Path(tmp) / f"state-{name}",
                                  cgroup_group=f"corral-bench-{name}-{digest}")
                name = f"{name} ({tier.runsc.info.platform}, runsc {tier.runsc.info.release})"
            results[name] = await bench_tier(tier, rootfs, Path(tmp), args.runs)
    text = render(results, args.runs, args.template)
    print(text)
    if args.append:
        with open(args.append, "a") as f:
            f.write("\n" + text)


if __name__ == "__main__":
    asyncio.run(main())
