"""A real implementation of the `Tier` contract that keeps its sandboxes in memory.

It is what the lifecycle and API unit tests run against: every method does what the contract
says (create records a sandbox, destroy forgets it, freeze/thaw change its state, leftovers
lists what it still holds), without namespaces or root. The real tiers are exercised end to
end in tests/e2e and tests/security.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from corral.runtime.base import Capabilities, ResourceUsage, SandboxHandle, SandboxSpec, Tier, TierError


class MemoryTier(Tier):
    """Its "writable layer" is a real file, workdir/disk.img, so pause, snapshot and fork move
    real bytes: `stop` keeps it, `export_layer` copies it, `create` boots from `spec.layer`."""

    name = "memory"
    capabilities = Capabilities(freeze=True, memory_checkpoint=False, filesystem=True)  # type: ignore[assignment]

    def __init__(self) -> None:
        self.running: dict[str, SandboxSpec] = {}
        self.frozen: set[str] = set()
        self.destroyed: list[str] = []
        self.dead: set[str] = set()
        self.adoptable: set[str] = set()   # ids `adopt` finds healthy after a "restart"
        self.fail_create: Exception | None = None
        self.boots: list[str] = []

    async def start(self) -> None: ...
    async def close(self) -> None: ...

    def _handle(self, sandbox_id: str, workdir: Path) -> SandboxHandle:
        return SandboxHandle(sandbox_id, self.name, workdir / "envd.sock", 0)

    async def create(self, spec: SandboxSpec) -> SandboxHandle:
        if self.fail_create is not None:
            raise self.fail_create
        layer = Path(spec.workdir) / "disk.img"
        if spec.layer is None:
            layer.write_bytes(b"")
        elif Path(spec.layer) != layer:
            shutil.copyfile(spec.layer, layer)
        elif not layer.exists():
            raise TierError("no layer to boot from")
        self.running[spec.sandbox_id] = spec
        self.boots.append(spec.sandbox_id)
        return self._handle(spec.sandbox_id, spec.workdir)

    async def stop(self, sandbox_id: str, workdir: Path) -> None:
        self.running.pop(sandbox_id, None)
        self.frozen.discard(sandbox_id)

    async def export_layer(self, sandbox_id: str, workdir: Path, dest: Path, *, frozen: bool = False) -> int:
        if sandbox_id not in self.running:
            raise TierError(f"sandbox {sandbox_id} is not running")
        shutil.copyfile(Path(workdir) / "disk.img", dest)
        return dest.stat().st_size

    async def destroy(self, sandbox_id: str, workdir: Path) -> None:
        self.running.pop(sandbox_id, None)
        self.frozen.discard(sandbox_id)
        self.destroyed.append(sandbox_id)

    async def adopt(self, sandbox_id: str, workdir: Path) -> SandboxHandle | None:
        if sandbox_id in self.adoptable and sandbox_id in self.running:
            return self._handle(sandbox_id, workdir)
        return None

    async def leftovers(self) -> list[str]:
        return list(self.running)

    async def freeze(self, sandbox_id: str) -> None:
        self.frozen.add(sandbox_id)

    async def thaw(self, sandbox_id: str) -> None:
        self.frozen.discard(sandbox_id)

    async def usage(self, sandbox_id: str, workdir: Path) -> ResourceUsage:
        spec = self.running[sandbox_id]
        return ResourceUsage(1_000_000, spec.limits.cpu_count, 10 << 20, 1 << 20, spec.limits.memory_mb << 20,
                             4096, spec.limits.disk_mb << 20)

    def is_alive(self, sandbox_id: str) -> bool:
        return sandbox_id in self.running and sandbox_id not in self.dead
