"""Test support: real gVisor sandboxes running the real envd, and leak checks."""

from __future__ import annotations

import itertools
import os
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from corral.wire.client import EnvdClient, login_shell
from corral.wire.handoff import EnvdConfig
from corral.runtime.base import Limits, SandboxHandle, SandboxSpec
from corral.runtime.gvisor import GVisorTier
from corral.runtime.gvisor.runsc import runsc_installed
from corral.runtime.namespace import disk
from tests.runtime.namespace.sandboxes import find_rootfs

_ids = itertools.count()


@dataclass
class Finished:
    exit_code: int
    output: str


def require_gvisor() -> Path:
    if os.geteuid() != 0:
        pytest.skip("gVisor tier tests need root")
    if not runsc_installed():
        pytest.skip("runsc is not installed (scripts/install-runsc.sh)")
    root = find_rootfs()
    if root is None:
        pytest.skip("no template rootfs with python3 (build /var/lib/corral/templates/base)")
    return root


@dataclass
class Box:
    tier: GVisorTier
    handle: SandboxHandle
    spec: SandboxSpec

    @property
    def id(self) -> str:
        return self.spec.sandbox_id

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=str(self.handle.envd_socket)),
                                 base_url="http://envd", timeout=120)

    @property
    def token(self) -> str | None:
        cfg = self.spec.payload_config
        return EnvdConfig.from_bytes(cfg).access_token if cfg else None

    async def sh(self, cmd: str, user: str = "root", timeout: float = 60) -> Finished:
        """Run ``cmd`` in a login shell through envd's process service."""
        async with self.client() as c:
            envd = EnvdClient(c, self.token)
            done = await envd.run(login_shell(cmd), user=user, timeout=timeout)
            return Finished(done.exit_code, done.text)


class BoxFactory:
    def __init__(self, tier: GVisorTier, base: Path, rootfs: Path) -> None:
        self.tier, self.base, self.rootfs = tier, base, rootfs
        self.made: list[Box] = []

    def spec(self, limits: Limits = Limits(1, 512, 256, 256), **kw) -> SandboxSpec:  # type: ignore[no-untyped-def]
        sid = f"gvt{os.getpid()}x{next(_ids)}"
        token = kw.pop("access_token", "tok-" + sid)
        handoff = EnvdConfig(sandbox_id=sid, access_token=token, **kw)
        return SandboxSpec(sandbox_id=sid, template="base", rootfs=self.rootfs,
                           workdir=self.base / "sandboxes" / sid, uid_base=1 << 30,
                           limits=limits, payload_config=handoff.to_bytes())

    async def create(self, limits: Limits = Limits(1, 512, 256, 256), **kw) -> Box:  # type: ignore[no-untyped-def]
        spec = self.spec(limits, **kw)
        handle = await self.tier.create(spec)
        box = Box(self.tier, handle, spec)
        self.made.append(box)
        return box

    async def destroy(self, box: Box) -> None:
        await self.tier.destroy(box.id, box.spec.workdir)


def leaks(tier: GVisorTier, spec: SandboxSpec) -> list[str]:
    """Everything a destroyed sandbox could leave on the host."""
    out = []
    if tier.runsc.state_files(spec.sandbox_id):
        out.append(f"runsc state {tier.runsc.state_files(spec.sandbox_id)}")
    if tier.runsc.control_sockets(spec.sandbox_id):
        out.append(f"runsc control socket {tier.runsc.control_sockets(spec.sandbox_id)}")
    if tier.cgroups.exists(spec.sandbox_id):
        out.append(f"cgroups {tier.cgroups.dirs(spec.sandbox_id)}")
    if Path(spec.workdir).exists():
        out.append(f"workdir {spec.workdir}")
    loops = disk.loop_devices_backed_by(Path(spec.workdir) / "disk.img")
    if loops:
        out.append(f"loop devices {loops}")
    mounts = Path("/proc/self/mountinfo").read_text()
    if str(spec.workdir) in mounts:
        out.append("a mount in the host namespace")
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    hits = [ln for ln in ps.splitlines() if spec.sandbox_id in ln]
    if hits:
        out.append(f"processes {hits}")
    return out


@asynccontextmanager
async def box_factory(base: Path) -> AsyncIterator[BoxFactory]:
    rootfs = require_gvisor()
    tier = GVisorTier(state_dir=base / "state", cgroup_group=f"corral-gvtest-{os.getpid()}")
    await tier.start()
    factory = BoxFactory(tier, base, rootfs)
    try:
        yield factory
    finally:
        for box in factory.made:
            await tier.destroy(box.id, box.spec.workdir)
        await tier.close()
