"""Several tiers behind one :class:`Tier`: each sandbox lives in the tier chosen for it.

The server keeps one :class:`TierSet`; lifecycle code calls it like any tier. ``create`` goes to
the tier named by :meth:`TierSet.use` (set from :func:`corral.runtime.isolation.choose` just
before), every other call to the tier that owns the sandbox. Ownership is remembered from create
and adopt; after a restart an unknown sandbox is looked for in every tier (adopt answers None for
sandboxes that are not its own, destroy and leftovers are per tier).
"""

from __future__ import annotations

from pathlib import Path

from corral.runtime.base import Capabilities, ResourceUsage, SandboxHandle, SandboxSpec, Tier, TierError
from corral.runtime.checkpoint import CheckpointInfo, Checkpointing


class TierSet(Tier, Checkpointing):
    name = "tierset"

    def __init__(self, tiers: dict[str, Tier], default: str) -> None:
        if default not in tiers:
            raise ValueError(f"default tier {default!r} is not one of {sorted(tiers)}")
        self.tiers = tiers
        self.default = default
        self._owner: dict[str, str] = {}

    @property
    def available(self) -> tuple[str, ...]:
        return tuple(self.tiers)

    def use(self, sandbox_id: str, tier_name: str) -> None:
        """Route ``sandbox_id`` (its create, and everything after) to ``tier_name``."""
        if tier_name not in self.tiers:
            raise TierError(f"isolation tier {tier_name!r} is not available on this server")
        self._owner[sandbox_id] = tier_name

    def tier_of(self, sandbox_id: str) -> str | None:
        return self._owner.get(sandbox_id)

    def _tier(self, sandbox_id: str) -> Tier:
        return self.tiers[self._owner.get(sandbox_id, self.default)]

    async def start(self) -> None:
        for tier in self.tiers.values():
            await tier.start()

    async def close(self) -> None:
        for tier in self.tiers.values():
            await tier.close()

    async def create(self, spec: SandboxSpec, **options: object) -> SandboxHandle:
        """``options`` go to the owning tier's create (gVisor's ``before_boot``)."""
        name = self._owner.setdefault(spec.sandbox_id, self.default)
        return await self.tiers[name].create(spec, **options)  # type: ignore[call-arg]

    async def destroy(self, sandbox_id: str, workdir: Path) -> None:
        name = self._owner.pop(sandbox_id, None)
        if name is not None:
            await self.tiers[name].destroy(sandbox_id, workdir)
            return
        # Unknown owner (after a restart): the tiers that still hold something of it, else the
        # default (which removes the workdir). Never two tiers on one live sandbox: a tier's
        # destroy removes the workdir under the other's processes.
        owners = [t for t in self.tiers.values() if sandbox_id in await t.leftovers()]
        for tier in owners or [self.tiers[self.default]]:
            await tier.destroy(sandbox_id, workdir)

    async def adopt(self, sandbox_id: str, workdir: Path) -> SandboxHandle | None:
        names = [self._owner[sandbox_id]] if sandbox_id in self._owner else list(self.tiers)
        for name in names:
            handle = await self.tiers[name].adopt(sandbox_id, workdir)
            if handle is not None:
                self._owner[sandbox_id] = name
                return handle
        return None

    async def leftovers(self) -> list[str]:
        ids: set[str] = set()
        for name, tier in self.tiers.items():
            for sid in await tier.leftovers():
                ids.add(sid)
                self._owner.setdefault(sid, name)
        return sorted(ids)

    def capabilities_of(self, sandbox_id: str) -> Capabilities:
        return self._tier(sandbox_id).capabilities

    async def stop(self, sandbox_id: str, workdir: Path) -> None:
        await self._tier(sandbox_id).stop(sandbox_id, workdir)

    async def export_layer(self, sandbox_id: str, workdir: Path, dest: Path, *, frozen: bool = False) -> int:
        return await self._tier(sandbox_id).export_layer(sandbox_id, workdir, dest, frozen=frozen)

    async def freeze(self, sandbox_id: str) -> None:
        await self._tier(sandbox_id).freeze(sandbox_id)

    async def thaw(self, sandbox_id: str) -> None:
        await self._tier(sandbox_id).thaw(sandbox_id)

    async def usage(self, sandbox_id: str, workdir: Path) -> ResourceUsage:
        return await self._tier(sandbox_id).usage(sandbox_id, workdir)

    def is_alive(self, sandbox_id: str) -> bool:
        return self._tier(sandbox_id).is_alive(sandbox_id)

    # --- checkpoints: offered when the sandbox's tier has them -------------------------------

    def supports_checkpoint(self, sandbox_id: str) -> bool:
        return isinstance(self._tier(sandbox_id), Checkpointing)

    def _checkpointing(self, sandbox_id: str) -> Checkpointing:
        tier = self._tier(sandbox_id)
        if not isinstance(tier, Checkpointing):
            raise TierError(f"the {tier.name} tier has no memory checkpoints")
        return tier

    async def checkpoint(self, sandbox_id: str, workdir: Path, image_dir: Path | None = None, *,
                         leave_running: bool = False, with_disk: bool = False) -> CheckpointInfo:
        return await self._checkpointing(sandbox_id).checkpoint(
            sandbox_id, workdir, image_dir, leave_running=leave_running, with_disk=with_disk)

    async def restore(self, sandbox_id: str, workdir: Path, image_dir: Path | None = None, *,
                      spec: SandboxSpec | None = None) -> SandboxHandle:
        """For a fork (``spec`` given), call :meth:`use` for the new id first."""
        return await self._checkpointing(sandbox_id).restore(sandbox_id, workdir, image_dir,
                                                             spec=spec)

    def has_checkpoint(self, workdir: Path, image_dir: Path | None = None) -> bool:
        return any(t.has_checkpoint(workdir, image_dir) for t in self.tiers.values()
                   if isinstance(t, Checkpointing))
