"""Fork: N independent sandboxes from one running sandbox, which keeps running.

The source's writable layer is copied out once (frozen for the copy only, `Tier.export_layer`)
into a staging image, and each fork boots from its own sparse copy of it, in parallel, with the
source's template, limits, metadata and environment under its own id and token. Each fork
succeeds or fails on its own; the result says which mode each got: "filesystem" (the files; the
processes start fresh) on every tier that can copy a layer, "full" (memory too) only where the
tier checkpoints memory: the source's memory image is written once (`Snapshots.export_memory`,
the source restored in place) and the N forks are parallel restores of it, each under its own
id, token, hostname and deadline (`Starter.launch(memory=...)`).
"""

from __future__ import annotations

import asyncio
import shutil
import secrets
from dataclasses import dataclass
from pathlib import Path

from corral.errors import CorralError, InvalidRequest
from corral.lifecycle import boot
from corral.lifecycle.errors import ModeUnsupported
from corral.lifecycle.images import image_config
from corral.lifecycle.limits import resolve_timeout
from corral.lifecycle.parts import Parts
from corral.lifecycle.pausing import record_limits
from corral.lifecycle.snapshots import Snapshots
from corral.lifecycle.starter import Starter
from corral.store import SandboxRecord, SandboxState

MAX_FORKS = 20   # what the API and the SDK allow


@dataclass(frozen=True)
class ForkResult:
    mode: str
    record: SandboxRecord | None = None
    error: CorralError | None = None


class Forks:
    def __init__(self, parts: Parts, starter: Starter, snapshots: Snapshots) -> None:
        self.parts = parts
        self.starter = starter
        self.snapshots = snapshots

    async def fork(self, sandbox_id: str, count: int, timeout: int | None, mode: str | None) -> list[ForkResult]:
        if not 1 <= count <= MAX_FORKS:
            raise InvalidRequest(f"invalid count: must be between 1 and {MAX_FORKS}")
        resolved = self.snapshots.resolve_mode(mode, "fork", sandbox_id)
        parts = self.parts
        staging = self.snapshots.root / f".fork-{sandbox_id}-{secrets.token_hex(4)}"
        async with parts.lock(sandbox_id):
            rec = parts.visible(sandbox_id)
            if rec.state != SandboxState.RUNNING.value:
                raise ModeUnsupported(f"sandbox {sandbox_id} is paused; resume it to fork it")
            config = boot.load_config(Path(rec.workdir))
            try:
                if resolved == "full":
                    await self.snapshots.export_memory(rec, staging)
                else:
                    await self.snapshots.export(rec, staging)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
        try:
            s = parts.settings
            seconds = resolve_timeout(timeout, s.default_timeout_s, s.ceilings)
            memory = staging if resolved == "full" else None
            results = await asyncio.gather(*(self._one(rec, config, staging / "disk.img", seconds, memory)
                                             for _ in range(count)), return_exceptions=True)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        out: list[ForkResult] = []
        for r in results:
            if isinstance(r, SandboxRecord):
                out.append(ForkResult(resolved, record=r))
            elif isinstance(r, CorralError):
                out.append(ForkResult(resolved, error=r))
            elif isinstance(r, Exception):
                out.append(ForkResult(resolved, error=CorralError(f"fork failed: {r}")))
            else:
                raise r   # a cancellation
        return out

    async def _one(self, src: SandboxRecord, config: boot.EnvdConfig, layer: Path, timeout: int,
                   memory: Path | None = None) -> SandboxRecord:
        template = self.parts.templates.get(src.template_id)
        image = image_config(template)
        rec = await self.starter.launch(
            template, image, record_limits(src), env=dict(config.env_vars), alias=src.alias or src.template_id,
            timeout=timeout, metadata=dict(src.metadata_ or {}), auto_pause=src.on_timeout == "pause",
            layer=None if memory is not None else layer, handoff=config, memory=memory,
            isolation=src.tier if memory is not None else None,
            volumes=tuple(self.parts.store.volumes.mounts_of(src.sandbox_id)),   # shared, not copied
        )
        running = self.parts.store.update(rec.sandbox_id, state=SandboxState.RUNNING.value,
                                          auto_pause_mode=src.auto_pause_mode, auto_resume=src.auto_resume)
        assert running is not None
        self.parts.wake.set()
        return running
