"""A real implementation of the `Tier` contract that keeps its sandboxes in memory.

It is what the lifecycle and API unit tests run against: every method does what the contract
says (create records a sandbox, destroy forgets it, freeze/thaw change its state, leftovers
lists what it still holds), without namespaces or root. The real tiers are exercised end to
end in tests/e2e and tests/security.
"""

from __future__ import annotations

from pathlib import Path

from corral.runtime.base import ResourceUsage, SandboxHandle, SandboxSpec, Tier


class MemoryTier(Tier):
    name = "memory"

    def __init__(self) -> None:
        self.running: dict[str, SandboxSpec] = {}
        self.frozen: set[str] = set()
        self.destroyed: list[str] = []
        self.dead: set[str] = set()
        self.adoptable: set[str] = set()   # ids `adopt` finds healthy after a "restart"
        self.fail_create: Exception | None = None

    async def start(self) -> None: ...
    async def close(self) -> None: ...

    def _handle(self, sandbox_id: str, workdir: Path) -> SandboxHandle:
        return SandboxHandle(sandbox_id, self.name, workdir / "envd.sock", 0)

    async def create(self, spec: SandboxSpec) -> SandboxHandle:
        if self.fail_create is not None:
            raise self.fail_create
        self.running[spec.sandbox_id] = spec
        return self._handle(spec.sandbox_id, spec.workdir)

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
