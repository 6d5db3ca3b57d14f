"""The memory-checkpoint methods a tier offers when `Tier.capabilities.memory_checkpoint` is
true (the gVisor tier: ``runsc checkpoint``/``restore``), as the lifecycle calls them.

Declared here as a protocol, structurally, so the lifecycle depends on the shape of the calls and
not on any one tier's module: ``checkpoint(sandbox_id, workdir, image_dir=None, *, leave_running,
with_disk)`` writes the sandbox's state (stopping it unless ``leave_running``; ``with_disk`` also
stores the writable layer, needed to start *another* sandbox from the image), and ``restore``
brings it back in place, or as a new sandbox when given a ``spec`` (a fork, a full snapshot).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from corral.runtime.base import SandboxHandle, SandboxSpec, Tier


@runtime_checkable
class MemoryCheckpoints(Protocol):
    async def checkpoint(self, sandbox_id: str, workdir: Path, image_dir: Path | None = None, *,
                         leave_running: bool = False, with_disk: bool = False) -> Any: ...

    async def restore(self, sandbox_id: str, workdir: Path, image_dir: Path | None = None, *,
                      spec: SandboxSpec | None = None) -> SandboxHandle: ...

    def has_checkpoint(self, workdir: Path, image_dir: Path | None = None) -> bool: ...


def memory_checkpoints(tier: Tier, sandbox_id: str) -> MemoryCheckpoints | None:
    """The tier's checkpoint methods when it declares it can checkpoint this sandbox's memory."""
    if tier.capabilities_of(sandbox_id).memory_checkpoint and isinstance(tier, MemoryCheckpoints):
        return tier
    return None
