"""Resource limits of namespace-tier sandboxes hold against deliberate abuse (root)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from corral.runtime.base import Limits
from tests.runtime.namespace.sandboxes import SandboxFactory, sandbox_factory

pytestmark = pytest.mark.root


@pytest.fixture
async def sandboxes(tmp_path: Path) -> AsyncIterator[SandboxFactory]:
    async with sandbox_factory(tmp_path) as factory:
        yield factory


async def test_memory_bomb_is_oom_killed_and_init_survives(sandboxes: SandboxFactory) -> None:
    box = await sandboxes.create(limits=Limits(memory_mb=128, pids_max=64))
    out = await box.py("x = []\nwhile True: x.append(bytearray(8 << 20))", uid=1000)
    assert out["rc"] == -9, out
    assert box.tier.cgroups.events(box.id)["oom_kill"] >= 1
    assert (await box.run(["true"]))["rc"] == 0  # init (pid 1) survived
    usage = await box.tier.usage(box.id, box.spec.workdir)
    assert usage.memory_bytes <= 128 * 1024 * 1024


async def test_fork_bomb_stops_at_pids_max(sandboxes: SandboxFactory) -> None:
    box = await sandboxes.create(limits=Limits(pids_max=48))
    code = ("import os, time\nn = 0\ntry:\n    while True:\n        if os.fork() == 0:\n"
            "            time.sleep(30); os._exit(0)\n        n += 1\nexcept OSError as e:\n"
            "    print(n, e.errno)")
    out = await box.py(code, uid=1000, timeout=60)
    n, err = out["stdout"].split()
    assert int(err) == 11 and int(n) < 48  # EAGAIN at the limit
    assert box.tier.cgroups.events(box.id)["pids_max"] >= 1
    assert len(box.tier.cgroups.pids(box.id)) <= 48
    assert os.fork  # the host still forks fine
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)


async def test_disk_fill_hits_enospc_at_quota(sandboxes: SandboxFactory) -> None:
    box = await sandboxes.create(limits=Limits(disk_mb=64))
    out = await box.sh("dd if=/dev/zero of=/tmp/fill bs=1M count=200; ls -l /tmp/fill", uid=1000)
    assert "No space left on device" in out["stderr"]
    size = int(out["stdout"].split()[4])
    assert 40 * 1024 * 1024 < size <= 64 * 1024 * 1024
    # the host file backing the layer stays within the quota too
    image = Path(box.spec.workdir) / "disk.img"
    assert image.stat().st_blocks * 512 <= 64 * 1024 * 1024 + (1 << 20)


async def test_cpu_usage_is_bounded_by_quota(sandboxes: SandboxFactory) -> None:
    box = await sandboxes.create(limits=Limits(cpu_count=1))
    before = box.tier.cgroups.stats(box.id).cpu_usage_usec
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    code = ("import multiprocessing as m, time\n"
            "def burn():\n    t = time.time()\n    while time.time() - t < 2: pass\n"
            "ps = [m.Process(target=burn) for _ in range(2)]\n[p.start() for p in ps]\n"
            "[p.join() for p in ps]")
    out = await box.py(code, uid=1000)
    wall = loop.time() - t0
    used = (box.tier.cgroups.stats(box.id).cpu_usage_usec - before) / 1e6
    assert out["rc"] == 0, out
    # two busy processes under a 1-CPU quota: CPU-seconds per wall-second stays near 1
    assert used / wall < 1.3, (used, wall)
