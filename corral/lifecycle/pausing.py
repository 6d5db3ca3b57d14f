"""Pause and resume in the two modes E2B names, on whatever a tier can do (`Tier.capabilities`).

    full        memory kept. A tier with memory checkpoints writes it to disk (`checkpoint`, and
                `restore` on resume); otherwise the cgroup freezer keeps it resident (namespace
                tier: survives a server restart, not a host reboot; the sandbox's info says so).
    filesystem  every process ends and only the writable layer stays (`Tier.stop`): no memory,
                no CPU while paused, survives a host reboot. Resume boots a fresh sandbox with the
                same id, token and environment from that layer (`SandboxSpec.layer`), mounts its
                volumes again and attaches a new network with the egress rules it paused with.

How a sandbox was paused is written beside its layer (`boot.PauseState`), so a restarted server
resumes it the same way. A resume without a timeout restores what was left of the sandbox's
timeout when it paused, never a silent default.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from corral.lifecycle import boot
from corral.lifecycle.checkpoints import memory_checkpoints
from corral.lifecycle.errors import ModeUnsupported, TierFailed
from corral.lifecycle.images import image_config
from corral.lifecycle.parts import Parts, now
from corral.lifecycle.starter import Starter
from corral.lifecycle.uids import uid_base_for_slot
from corral.runtime.base import Limits, SandboxSpec, TierError
from corral.store import SandboxRecord, SandboxState

FULL, FILESYSTEM = "full", "filesystem"
MODES = (FULL, FILESYSTEM)
MIN_LEFT_S = 5


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ModeUnsupported(f"invalid mode {mode!r}: expected full or filesystem")
    return mode


def record_limits(rec: SandboxRecord) -> Limits:
    return Limits(cpu_count=rec.cpu_count, memory_mb=rec.memory_mb, disk_mb=rec.disk_mb, pids_max=rec.pids_max)


class Pauser:
    def __init__(self, parts: Parts, starter: Starter) -> None:
        self.parts = parts
        self.starter = starter

    # --- pause ---------------------------------------------------------------------------------

    async def pause(self, rec: SandboxRecord, mode: str) -> boot.PauseState:
        """Pause a running sandbox (the caller holds its lock and has checked its state)."""
        parts, tier = self.parts, self.parts.tier
        workdir = Path(rec.workdir)
        # What a resume without a timeout restores: what was left, or (paused by its timeout, so
        # nothing is left) the lifetime it was given, so an auto-resume does not re-pause at once.
        left = int((rec.end_at - now()).total_seconds())
        if left < MIN_LEFT_S:
            left = max(MIN_LEFT_S, int((rec.end_at - rec.started_at).total_seconds()))
        caps = tier.capabilities_of(rec.sandbox_id)
        try:
            if check_mode(mode) == FULL:
                ckpt = memory_checkpoints(tier, rec.sandbox_id)
                if ckpt is not None:
                    boot.sync_config(workdir)   # the restore after a host reboot boots with it
                    await ckpt.checkpoint(rec.sandbox_id, workdir)
                    state = boot.PauseState(FULL, "checkpoint", left)
                    parts.handles.pop(rec.sandbox_id, None)
                elif caps.freeze:
                    await tier.freeze(rec.sandbox_id)
                    state = boot.PauseState(FULL, "freezer", left)
                else:
                    raise ModeUnsupported(f"the {tier.name} tier cannot keep memory; pause with mode=filesystem")
            else:
                if not caps.filesystem:
                    raise ModeUnsupported(f"the {tier.name} tier cannot pause to its filesystem; use mode=full")
                boot.load_config(workdir)   # refuse before stopping anything if it could not boot again
                boot.sync_config(workdir)   # and the resume after a host reboot boots with it
                # The network namespace ends with the sandbox's processes: keep its rules (as
                # they are now, runtime updates included) so that the resume re-attaches them.
                egress = parts.egress.policy_of(rec.sandbox_id)
                if egress is not None and egress.grants_egress:
                    # and what it used: the budget must not start again at zero after the resume
                    boot.save_egress(workdir, egress, await parts.egress.usage(rec.sandbox_id))
                parts.handles.pop(rec.sandbox_id, None)
                await tier.stop(rec.sandbox_id, workdir)
                if egress is not None:
                    await parts.egress.detach(rec.sandbox_id)
                state = boot.PauseState(FILESYSTEM, "layer", left)
        except TierError as exc:
            raise TierFailed(f"pause failed: {exc}") from None
        boot.save_pause(workdir, state)
        return state

    # --- resume --------------------------------------------------------------------------------

    async def resume(self, rec: SandboxRecord) -> boot.PauseState:
        """Bring a paused sandbox back the way it was paused (the caller holds its lock)."""
        parts, tier = self.parts, self.parts.tier
        workdir = Path(rec.workdir)
        state = boot.load_pause(workdir) or boot.PauseState(FULL, "freezer", self.parts.settings.default_timeout_s)
        try:
            if state.how == "freezer":
                await tier.thaw(rec.sandbox_id)
            elif state.how == "checkpoint":
                ckpt = memory_checkpoints(tier, rec.sandbox_id)
                if ckpt is None:
                    raise TierFailed(f"the {tier.name} tier cannot restore a memory checkpoint")
                parts.handles[rec.sandbox_id] = await ckpt.restore(rec.sandbox_id, workdir)
            else:
                await self._boot_from_layer(rec)
        except TierError as exc:
            raise TierFailed(f"resume failed: {exc}") from None
        boot.clear_pause(workdir)
        return state

    async def _boot_from_layer(self, rec: SandboxRecord) -> None:
        parts = self.parts
        workdir = Path(rec.workdir)
        template = parts.templates.get(rec.template_id)
        # No own deadline until the resume pushes the new one (the kept one may be long past).
        config = replace(boot.load_config(workdir), end_at=None)
        spec = SandboxSpec(
            sandbox_id=rec.sandbox_id, template=template.name, rootfs=template.rootfs, workdir=workdir,
            uid_base=uid_base_for_slot(rec.uid_slot), limits=record_limits(rec),
            payload_config=config.to_bytes(), layer=workdir / "disk.img",
            volumes=parts.volumes.binds(parts.store.volumes.mounts_of(rec.sandbox_id)),
        )
        handle = await parts.tier.create(spec)
        parts.handles[rec.sandbox_id] = handle
        kept = boot.load_egress(workdir)
        if kept is not None:   # the same rules it paused with, on a new network that goes on counting
            egress, carried = kept
            try:
                await parts.egress.attach(rec.sandbox_id, egress, handle, config.access_token, carried)
            except BaseException:
                parts.handles.pop(rec.sandbox_id, None)
                await parts.tier.stop(rec.sandbox_id, workdir)
                raise
            boot.clear_egress(workdir)
        image = image_config(template)
        if image is not None and (image.start_cmd or image.ready_cmd):
            try:
                await self.starter.start_and_wait_ready(rec.sandbox_id, handle, config.access_token or "",
                                                        image, config.default_user)
            except BaseException:
                # Keep the layer: a failed resume must not lose the sandbox's files.
                parts.handles.pop(rec.sandbox_id, None)
                await parts.tier.stop(rec.sandbox_id, workdir)
                raise

    def paused_for(self, rec: SandboxRecord) -> boot.PauseState | None:
        if rec.state != SandboxState.PAUSED.value:
            return None
        return boot.load_pause(Path(rec.workdir))

    def retention(self) -> timedelta:
        return timedelta(seconds=self.parts.settings.paused_retention_s)
