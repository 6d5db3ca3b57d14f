"""Starting a sandbox, as a pipeline whose every step leaves the store consistent:

    template → limits → isolation → slot → record → hand-off → tier → ready → network → running

`plan` does the steps that need no resources (the template is resolved here, once per create;
limits, timeout and egress are settled against it), `launch` takes a uid slot, writes the row in
`starting`, asks the tier for the sandbox and waits for the template's ready command, and
`finish` attaches the network and only then marks the row `running`. Until then the sandbox is
invisible to list, get, connect and the proxy, so no client ever sees a sandbox without its
network. A step that fails removes what the earlier ones made.

A warm pool launches with `pooled=True` (the row ends in `pooled`, still invisible) and a create
that claims one goes straight to `finish`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

from corral.errors import InvalidRequest
from corral.ids import new_access_token, new_sandbox_id
from corral.lifecycle import boot
from corral.lifecycle.checkpoints import memory_checkpoints
from corral.lifecycle.deadlines import own_end_at, pool_lease_end
from corral.lifecycle.errors import ModeUnsupported, StartFailed
from corral.lifecycle.images import default_user, image_config, sandbox_env, warm_kernels
from corral.lifecycle.limits import resolve_limits, resolve_timeout
from corral.lifecycle.parts import Parts, now
from corral.lifecycle.requests import CreateRequest, ResourceRequest
from corral.lifecycle.teardown import Teardown
from corral.lifecycle.tiers import attaches_at_boot, choose_isolation, route
from corral.lifecycle.uids import uid_base_for_slot
from corral.network import EgressPolicy
from corral.runtime.base import Limits, SandboxHandle, SandboxSpec, TierError
from corral.store import SandboxRecord, SandboxState
from corral.templates import TemplateInfo
from corral.wire import ENVD_VERSION
from corral.templates.image import ImageConfig
from corral.wire.client import EnvdError, login_shell
from corral.wire.handoff import EnvdConfig

READY_TIMEOUT_S = 120.0
# Tiers that cannot mount volumes (namespace and gvisor do: runtime/namespace/volumes.py).
NO_VOLUME_TIERS = frozenset({"microvm"})


@dataclass(frozen=True)
class StartPlan:
    """Everything settled about a sandbox before anything is allocated for it."""

    template: TemplateInfo
    image: ImageConfig | None
    limits: Limits
    timeout: int
    egress: EgressPolicy
    request: CreateRequest
    isolation: str = "namespace"   # the tier chosen for it (see lifecycle/tiers.py)
    # Boot from this writable layer (a snapshot's) instead of an empty one; never from a pool.
    layer: Path | None = None
    # Restore this memory image (a full snapshot's directory) instead of booting.
    memory: Path | None = None
    # (volume id, path) pairs the sandbox mounts (lifecycle/volumes.py); never from a pool.
    volumes: tuple[tuple[str, str], ...] = ()

    @property
    def env(self) -> dict[str, str]:
        """The sandbox's whole environment: the template's ENV under the client's envVars."""
        return sandbox_env(self.image, self.request.env_vars)


class Starter:
    def __init__(self, parts: Parts, teardown: Teardown) -> None:
        self.parts = parts
        self.teardown = teardown
        self._slot_lock = asyncio.Lock()

    # --- template → limits (no side effects) ---------------------------------------------------

    def limits(self, template: TemplateInfo, request: ResourceRequest = ResourceRequest()) -> Limits:
        s = self.parts.settings
        return resolve_limits(template.resources, request, s.ceilings, s.pids_max)

    def plan(self, request: CreateRequest) -> StartPlan:
        s = self.parts.settings
        template = self.parts.templates.get(request.template)   # TemplateNotFound is a 404
        image = image_config(template)
        isolation = choose_isolation(s, self.parts.tier, image.isolation if image else None, request.isolation)
        volumes = tuple(self.parts.volumes.resolve(list(request.volume_mounts)))
        if volumes and isolation in NO_VOLUME_TIERS:
            raise InvalidRequest(f"volume mounts are not supported on the {isolation} tier yet")
        return StartPlan(
            template=template, image=image, limits=self.limits(template, request.resources),
            timeout=resolve_timeout(request.timeout, s.default_timeout_s, s.ceilings),
            egress=self.parts.egress.resolve(request.network, image.network if image else None),
            request=request, isolation=isolation, volumes=volumes,
        )

    def default_isolation(self, image: ImageConfig | None) -> str:
        """The tier a sandbox of this template gets when nobody asks (warm pools)."""
        return choose_isolation(self.parts.settings, self.parts.tier,
                                image.isolation if image else None, None)

    # --- slot → record → tier → ready ----------------------------------------------------------

    async def launch(self, template: TemplateInfo, image: ImageConfig | None, limits: Limits, *,
                     env: dict[str, str], alias: str, timeout: int, metadata: dict[str, str],
                     auto_pause: bool = False, pooled: bool = False, isolation: str | None = None,
                     egress: EgressPolicy | None = None, layer: Path | None = None,
                     handoff: EnvdConfig | None = None, memory: Path | None = None,
                     volumes: tuple[tuple[str, str], ...] = ()) -> SandboxRecord:
        """Start one sandbox; its row is left in `starting` (or `pooled`), never `running`.

        ``egress``: a tier whose sandboxes take their network at boot (gVisor) gets it attached
        here, before the tier starts the sandbox; `finish` then only writes resolv.conf.
        ``memory``: restore this memory image (a full snapshot, a memory fork) instead of booting;
        ``handoff`` is then the configuration of the sandbox the image was taken from, whose
        envd wakes up in the copy and is given the new sandbox's identity (`reidentify`)."""
        parts = self.parts
        if memory is not None and handoff is None:
            raise StartFailed("a memory restore needs its source's configuration")
        if memory is not None and volumes:
            raise ModeUnsupported("a sandbox restored from memory cannot mount volumes yet (its image was "
                                  "taken with the source's mounts); use a filesystem snapshot or fork")
        sandbox_id, token = new_sandbox_id(), new_access_token()
        isolation = isolation or self.default_isolation(image)
        workdir = parts.settings.sandboxes_dir / sandbox_id
        started = now()
        async with self._slot_lock:
            used = parts.store.used_slots()
            slot = next(i for i in range(len(used) + 1) if i not in used)
            parts.store.add(SandboxRecord(
                sandbox_id=sandbox_id, template_id=template.name, alias=alias, client_id="corral",
                state=SandboxState.STARTING.value, tier=isolation, started_at=started,
                end_at=started + timedelta(seconds=timeout), cpu_count=limits.cpu_count,
                memory_mb=limits.memory_mb, disk_mb=limits.disk_mb, pids_max=limits.pids_max,
                uid_slot=slot, workdir=str(workdir), envd_version=ENVD_VERSION,
                envd_access_token=token, traffic_access_token=new_access_token(), metadata_=metadata,
                allow_internet_access=False, on_timeout="pause" if auto_pause else "kill",
                node_id=parts.store.node_id,
            ), volumes=volumes)   # in use from now on; held by another node: 409 (store/volumes.py)
        # What the sandbox's envd starts with, serialised once; the tier passes the bytes on unread.
        rec = parts.store.get(sandbox_id)
        assert rec is not None
        end_at = pool_lease_end() if pooled else own_end_at(rec)
        # (A fork passes its source's hand-off, renamed: the same environment under a new identity.)
        source_token = handoff.access_token if handoff is not None else None
        if handoff is not None:
            handoff = replace(boot.renamed(handoff, sandbox_id, token), end_at=end_at)
        else:
            handoff = replace(self.handoff(template, image, sandbox_id, token, env), end_at=end_at)
        spec = SandboxSpec(
            sandbox_id=sandbox_id, template=template.name, rootfs=template.rootfs, workdir=workdir,
            uid_base=uid_base_for_slot(slot), limits=limits, payload_config=handoff.to_bytes(), layer=layer,
            volumes=parts.volumes.binds(list(volumes)),
        )
        before_boot = None
        if egress is not None and egress.grants_egress and attaches_at_boot(parts.tier, isolation):
            async def before_boot(netns_path: str) -> None:
                await parts.egress.attach_at_boot(sandbox_id, egress, netns_path)
        try:
            workdir.mkdir(parents=True, exist_ok=False, mode=0o700)
            if not pooled:
                boot.save_config(workdir, handoff, durable=False)   # what a filesystem-mode resume boots with
            route(parts.tier, sandbox_id, isolation)
            if memory is not None:
                ckpt = memory_checkpoints(parts.tier, sandbox_id)
                if ckpt is None:
                    raise StartFailed(f"the {isolation} tier cannot restore a memory image")
                handle = await ckpt.restore(sandbox_id, workdir, memory, spec=spec)
                await self.reidentify(sandbox_id, handle, source_token, handoff)
            else:
                handle = await (parts.tier.create(spec, before_boot=before_boot) if before_boot
                                else parts.tier.create(spec))
        except BaseException as exc:
            await self.teardown.discard(sandbox_id, workdir, "failed to start")
            if isinstance(exc, TierError):
                raise StartFailed(f"sandbox failed to start: {exc}") from None
            raise
        parts.handles[sandbox_id] = handle
        # (a memory copy's start command is already running: it was restored with everything else)
        if memory is None and image is not None and (image.start_cmd or image.ready_cmd):
            try:
                await self.start_and_wait_ready(sandbox_id, handle, token, image, handoff.default_user)
            except BaseException:
                await self.teardown.discard(sandbox_id, workdir, "not ready")
                raise
        if pooled:
            parts.store.update(sandbox_id, state=SandboxState.POOLED.value)
        rec = parts.store.get(sandbox_id)
        assert rec is not None
        return rec

    async def reidentify(self, sandbox_id: str, handle: SandboxHandle, source_token: str | None,
                         config: EnvdConfig) -> None:
        """Make a memory copy its own sandbox. Its envd woke up holding the source's access
        token, environment and deadline (the restored memory); swap in this sandbox's, with the
        token envd still has, so the copy never answers to the source's token (nor the source
        to the copy's). Its hostname is set by the tier at restore."""
        envd = self.parts.envd(sandbox_id, handle, source_token)
        try:
            await envd.hand_over(config.access_token, config.env_vars, end_at=config.end_at)
        except EnvdError as exc:
            raise StartFailed(f"the restored sandbox did not take its identity: {exc.message}") from None

    @staticmethod
    def handoff(template: TemplateInfo, image: ImageConfig | None, sandbox_id: str, token: str,
                env: dict[str, str]) -> EnvdConfig:
        return EnvdConfig(
            sandbox_id=sandbox_id, env_vars=env, access_token=token,
            start_kernels=list(warm_kernels(template.rootfs)), default_user=default_user(image),
            default_workdir=image.workdir if image and image.workdir not in ("", "/") else None,
        )

    async def start_and_wait_ready(self, sandbox_id: str, handle: SandboxHandle, token: str,
                                    image: ImageConfig, user: str) -> None:
        """A template's start command runs in the background; its ready command is retried until
        it succeeds, so a sandbox is handed out only once its service answers."""
        envd = self.parts.envd(sandbox_id, handle, token)
        try:
            if image.start_cmd:
                await envd.start(login_shell(image.start_cmd), user=user, tag="start-cmd")
            if image.ready_cmd:
                loop = asyncio.get_running_loop()
                deadline = loop.time() + READY_TIMEOUT_S
                while True:
                    done = await envd.run(login_shell(image.ready_cmd), user=user, timeout=30)
                    if done.exit_code == 0:
                        return
                    if loop.time() > deadline:
                        raise StartFailed(f"sandbox failed to start: the template's ready command did not succeed "
                                          f"within {READY_TIMEOUT_S:.0f}s: {done.text.strip()[-300:]}")
                    await asyncio.sleep(0.2)
        except EnvdError as exc:
            raise StartFailed(f"sandbox failed to start: {exc.message}") from None

    # --- network → running ---------------------------------------------------------------------

    async def finish(self, rec: SandboxRecord, plan: StartPlan) -> SandboxRecord:
        """Attach the sandbox's network (and write its resolv.conf), then make it visible."""
        parts = self.parts
        net = plan.request.network
        workdir = Path(rec.workdir)
        if not (workdir / boot.BOOT_FILE).exists():   # a pooled sandbox, handed over just now
            boot.save_config(workdir, self.handoff(plan.template, plan.image, rec.sandbox_id,
                                                   rec.envd_access_token or "", plan.env), durable=False)
        if plan.egress.grants_egress:
            handle = parts.handles[rec.sandbox_id]
            try:
                await parts.egress.attach(rec.sandbox_id, plan.egress, handle, rec.envd_access_token)
            except BaseException:
                await self.teardown.kill(rec.sandbox_id, reason="network attach failed")
                raise
        running = parts.store.update(rec.sandbox_id, state=SandboxState.RUNNING.value,
                                     allow_internet_access=plan.egress.internet, public_traffic=net.public_traffic,
                                     network=net.echo, auto_pause_mode=plan.request.auto_pause_mode,
                                     auto_resume=plan.request.auto_resume)
        assert running is not None
        parts.wake.set()
        return running

    async def start(self, plan: StartPlan) -> SandboxRecord:
        """A fresh sandbox for a client: launch, then finish."""
        req = plan.request
        rec = await self.launch(plan.template, plan.image, plan.limits, env=plan.env, alias=req.template,
                                timeout=plan.timeout, metadata=dict(req.metadata), auto_pause=req.auto_pause,
                                isolation=plan.isolation, egress=plan.egress, layer=plan.layer,
                                memory=plan.memory, volumes=plan.volumes,
                                handoff=(replace(boot.load_config(plan.memory), env_vars=plan.env)
                                         if plan.memory is not None else None))
        return await self.finish(rec, plan)
