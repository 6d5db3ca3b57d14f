"""The lifecycle's façade: what the API calls, wired over the pipeline's modules.

    starter.py    template → limits → slot → record → tier → ready → network → running
    pool.py       warm sandboxes, claimed by a create before the starter launches a new one
    control.py    timeouts, refreshes, pause, resume
    teardown.py   kill and every other way a sandbox ends
    recovery.py   re-adoption and clean-up after a restart
    reaper.py     timeouts, sandboxes that died on their own, the template trash

Every state change is written to the store before or right after the tier acts, in an order that
lets a restarted server finish the job (see recovery.py).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from corral.config import Settings
from corral.lifecycle import control, forking, pausing, recovery, reaper, snapshots, starter, teardown, timing
from corral.lifecycle.egress import Egress
from corral.lifecycle.idempotency import IdempotentCreates
from corral.lifecycle.parts import Parts
from corral.lifecycle.pool import WarmPool
from corral.lifecycle.requests import CreateRequest, NetworkUpdate
from corral.lifecycle.teardown import KillHook
from corral.lifecycle.volumes import Volumes
from corral.errors import Conflict
from corral.lifecycle.errors import SandboxNotFound
from corral.lifecycle.tiers import attaches_at_boot
from corral.runtime.base import ResourceUsage, SandboxHandle, Tier
from corral.store import SandboxRecord, SandboxState, Store
from corral.templates import TemplateStore
from corral.uds import SandboxClients
from corral.usage import UsageRecorder

log = logging.getLogger("corral.lifecycle")


class SandboxService:
    def __init__(self, settings: Settings, store: Store, templates: TemplateStore, tier: Tier) -> None:
        clients = SandboxClients()  # HTTP clients for sandbox daemons, shared by proxy and pool
        self.parts = Parts(settings=settings, store=store, templates=templates, tier=tier, clients=clients,
                           egress=Egress(settings, clients), metering=UsageRecorder(store),
                           volumes=Volumes(store, settings.volumes_dir, settings.volume_size_mb,
                                           settings.volume_max_size_mb))
        self.teardown = teardown.Teardown(self.parts)
        self.starter = starter.Starter(self.parts, self.teardown)
        self.pauser = pausing.Pauser(self.parts, self.starter)
        self.control = control.Control(self.parts, self.pauser)
        self.snapshots = snapshots.Snapshots(self.parts)
        self.forks = forking.Forks(self.parts, self.starter, self.snapshots)
        self.reaper = reaper.Reaper(self.parts, self.teardown, self.control)
        self.purger = reaper.TrashPurger(self.parts)
        self.pool: WarmPool | None = None
        self.idempotent = IdempotentCreates(store, self.create, self.kill)

    # --- the parts others share ----------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        return self.parts.settings

    @property
    def store(self) -> Store:
        return self.parts.store

    @property
    def clients(self) -> SandboxClients:
        return self.parts.clients

    @property
    def egress(self) -> Egress:
        return self.parts.egress

    @property
    def volumes(self) -> Volumes:
        return self.parts.volumes

    @property
    def metering(self) -> UsageRecorder:
        return self.parts.metering

    @property
    def on_kill(self) -> list[KillHook]:
        return self.teardown.on_kill

    # --- start / stop --------------------------------------------------------------------------

    async def start(self) -> None:
        self.settings.sandboxes_dir.mkdir(parents=True, exist_ok=True)
        await self.parts.tier.start()
        await recovery.recover(self.parts, self.teardown)
        self.reaper.start()
        self.purger.start()
        if self.settings.pool:
            self.pool = WarmPool(self.parts, self.starter, self.teardown, self.settings.pool)
            self.pool.start()

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()
        await self.egress.close()
        await self.reaper.close()
        await self.purger.close()
        await self.parts.tier.close()

    # --- create and kill -----------------------------------------------------------------------

    async def create(self, request: CreateRequest) -> SandboxRecord:
        plan = self.snapshots.plan(self.starter, request) or self.starter.plan(request)
        with timing.phase("claim"):
            rec = (await self.pool.claim(plan)
                   if self.pool is not None and plan.layer is None and plan.memory is None and not plan.volumes
                   else None)
        with timing.phase("start" if rec is None else "finish"):
            running = await self.starter.start(plan) if rec is None else await self.starter.finish(rec, plan)
        self.parts.metering.started(running, from_pool=rec is not None)
        timing.note("create", "warm pool" if rec is not None
                    else "from snapshot" if plan.layer is not None or plan.memory is not None else "started")
        return running

    async def kill(self, sandbox_id: str, reason: str = "killed") -> bool:
        return await self.teardown.kill(sandbox_id, reason)

    # --- what clients see ----------------------------------------------------------------------

    def get(self, sandbox_id: str) -> SandboxRecord:
        return self.parts.visible(sandbox_id)

    def list(self) -> list[SandboxRecord]:
        return self.store.live([SandboxState.RUNNING, SandboxState.PAUSED])

    async def usage(self, sandbox_id: str) -> ResourceUsage:
        rec = self.get(sandbox_id)
        return await self.parts.tier.usage(sandbox_id, Path(rec.workdir))

    def envd_socket(self, sandbox_id: str) -> tuple[SandboxRecord | None, Path | None]:
        """The socket of a client-visible sandbox (never of a pooled or half-made one)."""
        try:
            rec = self.get(sandbox_id)
        except SandboxNotFound:
            return None, None
        handle = self.parts.handles.get(sandbox_id)
        return rec, (handle.envd_socket if handle else None)

    def handle(self, sandbox_id: str) -> SandboxHandle | None:
        return self.parts.handles.get(sandbox_id)

    # --- changes -------------------------------------------------------------------------------

    async def set_timeout(self, sandbox_id: str, seconds: int) -> SandboxRecord:
        return await self.control.set_timeout(sandbox_id, seconds)

    async def refresh(self, sandbox_id: str, seconds: int) -> SandboxRecord:
        return await self.control.refresh(sandbox_id, seconds)

    async def pause(self, sandbox_id: str, mode: str = pausing.FULL) -> bool:
        return await self.control.pause(sandbox_id, mode)

    async def settled(self, sandbox_id: str) -> None:
        """Wait while a pause or resume of the sandbox is under way, so that traffic is never
        sent to processes frozen half-way through a pause (it would hang, not fail)."""
        lock = self.parts.locks.get(sandbox_id)
        if lock is not None and lock.locked():
            async with lock:
                pass

    async def auto_resume(self, sandbox_id: str) -> bool:
        """Traffic reached a paused sandbox: resume it when it paused on its timeout (auto-pause)
        with its memory kept and its create asked for `autoResume: {enabled: true}`, as E2B's
        auto-resume does (E2B's default is off); a filesystem-mode pause is resumed only by an
        explicit connect (its processes are gone). True if it runs now."""
        try:
            rec = self.get(sandbox_id)
        except SandboxNotFound:
            return False
        state = self.pauser.paused_for(rec)
        if (rec.on_timeout != "pause" or rec.auto_resume is not True or state is None
                or state.mode != pausing.FULL):
            return False
        rec, _ = await self.control.connect(sandbox_id, None)
        return rec.state == SandboxState.RUNNING.value

    def pause_state(self, sandbox_id: str) -> dict[str, object] | None:
        """How a paused sandbox is paused and what it survives (its info shows it)."""
        state = self.pauser.paused_for(self.get(sandbox_id))
        return state.doc() if state is not None else None

    async def fork(self, sandbox_id: str, count: int, timeout: int | None,
                   mode: str | None = None) -> list["forking.ForkResult"]:
        return await self.forks.fork(sandbox_id, count, timeout, mode)

    async def snapshot(self, sandbox_id: str, name: str | None, mode: str | None) -> "snapshots.Snapshot":
        async with self.parts.lock(sandbox_id):
            rec = self.get(sandbox_id)
            return await self.snapshots.take(rec, name, mode)

    async def connect(self, sandbox_id: str, timeout: int | None) -> tuple[SandboxRecord, bool]:
        return await self.control.connect(sandbox_id, timeout)

    async def update_network(self, sandbox_id: str, update: NetworkUpdate) -> None:
        async with self.parts.lock(sandbox_id):
            rec = self.get(sandbox_id)
            handle = self.parts.handles.get(sandbox_id)
            if handle is None:
                raise SandboxNotFound(sandbox_id)
            if (update.egress.grants_egress and attaches_at_boot(self.parts.tier, rec.tier)
                    and not self.egress.is_attached(sandbox_id)):
                raise Conflict(f"sandbox {sandbox_id} runs on the {rec.tier} tier, which takes its "
                               "network when it starts: create it with the egress it needs")
            policy = await self.egress.update(sandbox_id, update.egress, handle, rec.envd_access_token)
            self.store.update(sandbox_id, allow_internet_access=policy.internet, network=update.echo)

    async def network_audit(self, sandbox_id: str) -> dict[str, Any]:
        self.get(sandbox_id)
        return await self.egress.audit(sandbox_id)
