"""Test support: real namespace-tier sandboxes running the command agent, and leak checks.

Used by tests/runtime/namespace and tests/security/test_runtime_*.py.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from corral.runtime.base import Limits, SandboxHandle, SandboxSpec
from corral.runtime.namespace import NamespaceTier, disk
from corral.wire.handoff import EnvdConfig
from tests.runtime.namespace.agent import AGENT_ARGV

_ids = itertools.count()


def find_rootfs() -> Path | None:
    for cand in (os.environ.get("CORRAL_TEST_ROOTFS"), "/var/lib/corral/templates/base/rootfs",
                 "/srv/corral-scratch/rootfs"):
        if cand and Path(cand, "usr/bin/python3").exists():
            return Path(cand)
    return None


def require_environment() -> Path:
    if os.geteuid() != 0:
        pytest.skip("namespace tier tests need root")
    root = find_rootfs()
    if root is None:
        pytest.skip("no template rootfs with python3: set CORRAL_TEST_ROOTFS, or build "
                    "/var/lib/corral/templates/base/rootfs")
    return root


@dataclass
class Sandbox:
    tier: NamespaceTier
    handle: SandboxHandle
    spec: SandboxSpec

    @property
    def id(self) -> str:
        return self.spec.sandbox_id

    async def run(self, argv: list[str], uid: int = 0, stdin: str = "",
                  timeout: float = 60) -> dict[str, Any]:
        reader, writer = await asyncio.open_unix_connection(str(self.handle.envd_socket))
        try:
            writer.write((json.dumps({"argv": argv, "uid": uid, "stdin": stdin,
                                      "timeout": timeout}) + "\n").encode())
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), timeout + 30)
        finally:
            writer.close()
        if not line:
            raise ConnectionError("agent closed the connection")
        return json.loads(line)

    async def sh(self, script: str, uid: int = 0, timeout: float = 60) -> dict[str, Any]:
        return await self.run(["/bin/sh", "-c", script], uid=uid, timeout=timeout)

    async def py(self, code: str, uid: int = 0, timeout: float = 60) -> dict[str, Any]:
        return await self.run(["/usr/bin/python3", "-c", code], uid=uid, timeout=timeout)


class SandboxFactory:
    def __init__(self, tier: NamespaceTier, base: Path, rootfs: Path) -> None:
        self.tier = tier
        self.base = base
        self.rootfs = rootfs
        self.made: list[Sandbox] = []

    async def create(self, limits: Limits | None = None, **config: Any) -> Sandbox:
        """``config``: EnvdConfig fields (access_token, env_vars, ...) for the sandbox's payload."""
        n = next(_ids)
        sid = f"t{os.getpid()}x{n}"
        spec = SandboxSpec(sid, "base", self.rootfs, self.base / sid,
                           uid_base=3_000_000 + (os.getpid() % 500) * 65536 * 8 + (n % 8) * 65536,
                           limits=limits or Limits(),
                           payload_config=EnvdConfig(sandbox_id=sid, **config).to_bytes())
        handle = await self.tier.create(spec)
        box = Sandbox(self.tier, handle, spec)
        self.made.append(box)
        return box


def host_leftovers(box: Sandbox) -> list[str]:
    """Everything of ``box`` still visible on the host; empty when cleanup was complete."""
    found = []
    sid, workdir = box.id, Path(box.spec.workdir)
    if box.tier.cgroups.exists(sid):
        found.append(f"cgroup {sid}")
    if box.handle.init_pid and os.path.exists(f"/proc/{box.handle.init_pid}"):
        try:
            with open(f"/proc/{box.handle.init_pid}/status") as f:
                if "State:\tZ" not in f.read():
                    found.append(f"process {box.handle.init_pid}")
        except OSError:
            pass
    if disk.loop_devices_backed_by(workdir / disk.IMAGE_NAME):
        found.append("loop device")
    with open("/proc/self/mountinfo") as f:
        if str(workdir) in f.read():
            found.append("mount")
    if workdir.exists():
        found.append(f"workdir {workdir}")
    return found


@asynccontextmanager
async def sandbox_factory(tmp_path: Path, group: str | None = None,
                          **tier_kw: Any) -> AsyncIterator[SandboxFactory]:
    rootfs = require_environment()
    state = Path("/var/lib/corral/test-runtime-state")
    group = group or f"corral-test-{os.getpid()}"   # per process: parallel workers never share a group
    tier = NamespaceTier(state_dir=state, cgroup_group=group,
                         init_argv=tier_kw.pop("init_argv", AGENT_ARGV), **tier_kw)
    await tier.start()
    base = tmp_path / "sandboxes"
    base.mkdir()
    os.chmod(tmp_path, 0o755)
    factory = SandboxFactory(tier, base, rootfs)
    try:
        yield factory
    finally:
        for box in factory.made:
            await tier.destroy(box.id, Path(box.spec.workdir))
        for box in factory.made:
            assert host_leftovers(box) == [], f"{box.id} left {host_leftovers(box)}"
        await tier.close()
        shutil.rmtree(base, ignore_errors=True)
