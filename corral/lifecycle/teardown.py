"""Taking a sandbox apart: its network, its tier resources, its workdir, then the hooks.

Every path that ends a sandbox (kill, timeout, a failed start, recovery) comes through here, so
nothing is left behind whichever way a sandbox dies. The store row is closed first: a crash
half-way leaves tier resources no live row claims, which the next start's recovery removes.
"""

from __future__ import annotations

import inspect
import logging
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

from corral.lifecycle.parts import Parts, now
from corral.store import SandboxState

log = logging.getLogger("corral.lifecycle")

KillHook = Callable[[str], Awaitable[None] | None]


class Teardown:
    def __init__(self, parts: Parts) -> None:
        self.parts = parts
        # Called with the sandbox id after a sandbox is gone, so per-sandbox state elsewhere
        # (proxy connections, metric baselines) is released with it.
        self.on_kill: list[KillHook] = []

    async def destroy_quietly(self, sandbox_id: str, workdir: Path) -> None:
        """Remove whatever exists of a sandbox; failures are logged, never raised."""
        try:
            await self.parts.egress.detach(sandbox_id)
        except Exception:  # noqa: BLE001
            log.exception("removing the network of %s failed", sandbox_id)
        try:
            await self.parts.tier.destroy(sandbox_id, workdir)
        except Exception:  # noqa: BLE001
            log.exception("destroying %s failed", sandbox_id)
        if workdir.exists():
            shutil.rmtree(workdir, ignore_errors=True)

    async def discard(self, sandbox_id: str, workdir: Path, reason: str) -> None:
        """A sandbox that never became usable: close its row and remove what was made."""
        self.parts.handles.pop(sandbox_id, None)
        await self.destroy_quietly(sandbox_id, workdir)
        self.parts.store.update(sandbox_id, state=SandboxState.KILLED.value, killed_at=now(), kill_reason=reason)
        self.parts.store.volumes.drop_mounts(sandbox_id)

    async def kill(self, sandbox_id: str, reason: str = "killed") -> bool:
        """End a live sandbox (any state); False if there was none."""
        parts = self.parts
        asked = now()  # metering ends when the kill was asked for, not when the lock came free
        async with parts.lock(sandbox_id):
            rec = parts.store.get_live(sandbox_id)
            if rec is None:
                return False
            parts.handles.pop(sandbox_id, None)
            parts.store.update(sandbox_id, state=SandboxState.KILLED.value, killed_at=now(), kill_reason=reason)
            parts.metering.ended(sandbox_id, reason, at=asked)
            await parts.metering.egress(sandbox_id, parts.egress.audit)  # the last egress reading
            await self.destroy_quietly(sandbox_id, Path(rec.workdir))
            # After the tier let go of its volumes: the rows are what says a volume is in use.
            parts.store.volumes.drop_mounts(sandbox_id)
        parts.locks.pop(sandbox_id, None)
        for hook in self.on_kill:
            result = hook(sandbox_id)
            if inspect.isawaitable(result):
                await result
        return True
