"""The one place that ties the store, the template store and an isolation tier together.

Every state change is written to the store before or right after the tier acts, in an order that
lets a restarted server finish the job: a row in `starting` or `running` whose tier resources are
gone is cleaned up, and tier resources with no live row are destroyed.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from corral import ENVD_VERSION
from corral.config import Settings
from corral.ids import new_access_token, new_sandbox_id
from corral.lifecycle import envd_calls
from corral.lifecycle.egress import Egress, request_network
from corral.lifecycle.images import default_user, image_config, sandbox_env, warm_kernels
from corral.lifecycle.pool import WarmPool
from corral.uds import SandboxClients
from corral.lifecycle.uids import uid_base_for_slot
from corral.policy import PolicyError, TemplateResources, resolve_limits, resolve_timeout
from corral.runtime.base import ResourceUsage, SandboxHandle, SandboxSpec, Tier, TierError
from corral.store import SandboxRecord, SandboxState, Store
from corral.usage import UsageRecorder

log = logging.getLogger("corral.lifecycle")


class NotFound(LookupError):
    pass


class Conflict(RuntimeError):
    pass


@dataclass
class CreateParams:
    template: str
    timeout: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    env_vars: dict[str, str] = field(default_factory=dict)
    allow_internet_access: bool | None = None
    network: dict[str, Any] | None = None
    auto_pause: bool = False


TRASH_PURGE_INTERVAL_S = 60.0
READY_TIMEOUT_S = 120.0


_VISIBLE = {SandboxState.RUNNING.value, SandboxState.PAUSED.value}


def _now() -> datetime:
    return datetime.now(timezone.utc)


class SandboxService:
    def __init__(self, settings: Settings, store: Store, templates, tier: Tier) -> None:  # type: ignore[no-untyped-def]
        self.settings = settings
        self.store = store
        self.templates = templates
        self.tier = tier
        self._handles: dict[str, SandboxHandle] = {}
        self._slot_lock = asyncio.Lock()
        self._locks: dict[str, asyncio.Lock] = {}
        self._wake = asyncio.Event()
        self._reaper: asyncio.Task[None] | None = None
        self.pool: WarmPool | None = None
        self.clients = SandboxClients()  # HTTP clients for sandbox daemons, shared by proxy and pool
        self.egress = Egress(settings, self.clients)
        self.metering = UsageRecorder(store)  # metering: every hand-out, pause, resume and end
        # Called with the sandbox id after a sandbox is gone, so per-sandbox state elsewhere
        # (proxy connections, metric baselines) is released with it.
        self.on_kill: list[Callable[[str], Awaitable[None] | None]] = []

    # --- start / stop -----------------------------------------------------------------------

    async def start(self) -> None:
        self.settings.sandboxes_dir.mkdir(parents=True, exist_ok=True)
        await self.tier.start()
        await self.recover()
        self._reaper = asyncio.create_task(self._reap_forever(), name="corral-reaper")
        self._purger: asyncio.Task[None] | None = None
        if hasattr(self.templates, "purge_trash"):
            self._purger = asyncio.create_task(self._purge_templates_forever(), name="corral-template-purge")
        if self.settings.pool:
            self.pool = WarmPool(self, self.settings.pool)
            self.pool.start()

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()
        await self.egress.close()
        for task in (self._reaper, getattr(self, "_purger", None)):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self.tier.close()

    async def recover(self) -> None:
        """Re-adopt healthy sandboxes, destroy what a crash left half-made or orphaned."""
        live_ids: set[str] = set()
        for rec in self.store.live():
            handle = None
            if rec.state not in (SandboxState.STARTING.value, SandboxState.POOLED.value):
                try:
                    handle = await self.tier.adopt(rec.sandbox_id, Path(rec.workdir))
                except Exception:  # noqa: BLE001 - a sandbox we cannot adopt is cleaned up below
                    log.exception("adopting %s failed", rec.sandbox_id)
            if handle is None:
                await self._destroy_quietly(rec.sandbox_id, Path(rec.workdir))
                self.store.update(rec.sandbox_id, state=SandboxState.KILLED.value, killed_at=_now(), kill_reason="lost in restart")
                self.metering.ended(rec.sandbox_id, "lost in restart")
                continue
            self._handles[rec.sandbox_id] = handle
            live_ids.add(rec.sandbox_id)
            log.info("re-adopted sandbox %s", rec.sandbox_id)
        for sid in await self.tier.leftovers():
            if sid not in live_ids:
                await self._destroy_quietly(sid, self.settings.sandboxes_dir / sid)
        await self.egress.recover(live_ids)
        if self.settings.sandboxes_dir.exists():
            for d in self.settings.sandboxes_dir.iterdir():
                if d.name not in live_ids:
                    await self._destroy_quietly(d.name, d)

    async def _destroy_quietly(self, sandbox_id: str, workdir: Path) -> None:
        try:
            await self.egress.detach(sandbox_id)
        except Exception:  # noqa: BLE001
            log.exception("removing the network of %s failed", sandbox_id)
        try:
            await self.tier.destroy(sandbox_id, workdir)
        except Exception:  # noqa: BLE001
            log.exception("destroying %s failed", sandbox_id)
        if workdir.exists():
            shutil.rmtree(workdir, ignore_errors=True)

    # --- lifecycle ----------------------------------------------------------------------------

    def _lock(self, sandbox_id: str) -> asyncio.Lock:
        return self._locks.setdefault(sandbox_id, asyncio.Lock())

    def template(self, name: str):  # type: ignore[no-untyped-def]
        try:
            return self.templates.get(name)
        except LookupError:
            raise NotFound(name) from None
        except ValueError as exc:  # an invalid template name
            raise PolicyError(str(exc)) from None

    async def create(self, p: CreateParams) -> SandboxRecord:
        template = self.template(p.template)
        timeout = resolve_timeout(p.timeout, self.settings.default_timeout_s, self.settings.ceilings)
        if any(not isinstance(v, str) for v in [*p.metadata.values(), *p.env_vars.values()]):
            raise PolicyError("metadata and envVars values must be strings")
        image = image_config(template)
        egress = self.egress.resolve(p.allow_internet_access, p.network, image.network if image else None)
        public = (p.network or {}).get("allowPublicTraffic", (p.network or {}).get("allow_public_traffic", True))
        if not isinstance(public, bool):
            raise PolicyError("network.allowPublicTraffic: expected true or false")
        rec = None
        if self.pool is not None:
            rec = await self.pool.claim(template.name, p, timeout, sandbox_env(image, dict(p.env_vars)))
        claimed = rec is not None
        if rec is None:
            rec = await self.start_sandbox(template, image, env_vars=dict(p.env_vars), pooled=False, alias=p.template,
                                           timeout=timeout, metadata=dict(p.metadata), auto_pause=p.auto_pause)
        if egress.grants_egress:
            handle = self._handles[rec.sandbox_id]
            try:
                await self.egress.attach(rec.sandbox_id, egress, handle.init_pid, handle.envd_socket,
                                         rec.envd_access_token)
            except BaseException:
                await self.kill(rec.sandbox_id, reason="network attach failed")
                raise
        rec = self.store.update(rec.sandbox_id, allow_internet_access=egress.internet, public_traffic=public,
                                network=request_network(p.allow_internet_access, p.network))
        assert rec is not None
        self.metering.started(rec, from_pool=claimed)
        self._wake.set()
        return rec

    async def update_network(self, sandbox_id: str, body: dict[str, Any]) -> None:
        async with self._lock(sandbox_id):
            rec = self.get(sandbox_id)
            handle = self._handles.get(sandbox_id)
            if handle is None:
                raise NotFound(sandbox_id)
            policy = await self.egress.update(sandbox_id, body, handle.init_pid, handle.envd_socket,
                                              rec.envd_access_token)
            self.store.update(sandbox_id, allow_internet_access=policy.internet,
                              network={k: v for k, v in body.items() if k in ("allowOut", "denyOut")})

    async def network_audit(self, sandbox_id: str) -> dict[str, Any]:
        self.get(sandbox_id)
        return await self.egress.audit(sandbox_id)

    async def start_sandbox(self, template, image, *, env_vars: dict[str, str], pooled: bool, alias: str,  # type: ignore[no-untyped-def]
                            timeout: int, metadata: dict[str, str], auto_pause: bool = False) -> SandboxRecord:
        """Start one sandbox from `template`: a client's (running) or a warm pool's (pooled)."""
        resources = TemplateResources(
            cpu_count=getattr(template, "cpu_count", None),
            memory_mb=getattr(template, "memory_mb", None),
            disk_mb=getattr(template, "disk_mb", None),
        )
        limits = resolve_limits(self.settings.defaults, resources, self.settings.ceilings)
        sandbox_id = new_sandbox_id()
        token = new_access_token()
        workdir = self.settings.sandboxes_dir / sandbox_id
        rootfs = Path(template.rootfs)
        now = _now()
        async with self._slot_lock:
            used = self.store.used_slots()
            slot = next(i for i in range(len(used) + 1) if i not in used)
            rec = SandboxRecord(
                sandbox_id=sandbox_id, template_id=template.name, alias=alias, client_id="corral",
                state=SandboxState.STARTING.value, tier=self.tier.name, started_at=now,
                end_at=now + timedelta(seconds=timeout), cpu_count=limits.cpu_count,
                memory_mb=limits.memory_mb, disk_mb=limits.disk_mb, pids_max=limits.pids_max,
                uid_slot=slot, workdir=str(workdir), envd_version=ENVD_VERSION,
                envd_access_token=token, traffic_access_token=new_access_token(), metadata_=metadata,
                allow_internet_access=False, on_timeout="pause" if auto_pause else "kill",
            )
            self.store.add(rec)
        spec = SandboxSpec(
            sandbox_id=sandbox_id, template=template.name, rootfs=rootfs, workdir=workdir,
            uid_base=uid_base_for_slot(slot), limits=limits, env_vars=sandbox_env(image, env_vars),
            access_token=token, start_kernels=warm_kernels(rootfs), default_user=default_user(image),
            default_workdir=image.workdir if image and image.workdir not in ("", "/") else None,
        )
        try:
            workdir.mkdir(parents=True, exist_ok=False, mode=0o700)
            handle = await self.tier.create(spec)
        except BaseException:
            await self._destroy_quietly(sandbox_id, workdir)
            self.store.update(sandbox_id, state=SandboxState.KILLED.value, killed_at=_now(), kill_reason="failed to start")
            raise
        self._handles[sandbox_id] = handle
        if image is not None and (image.start_cmd or image.ready_cmd):
            try:
                await self._start_and_wait_ready(sandbox_id, handle, token, image, spec.default_user)
            except BaseException:
                await self._destroy_quietly(sandbox_id, workdir)
                self._handles.pop(sandbox_id, None)
                self.store.update(sandbox_id, state=SandboxState.KILLED.value, killed_at=_now(), kill_reason="not ready")
                raise
        state = SandboxState.POOLED if pooled else SandboxState.RUNNING
        updated = self.store.update(sandbox_id, state=state.value)
        assert updated is not None
        return updated

    async def _start_and_wait_ready(self, sandbox_id: str, handle: SandboxHandle, token: str,
                                    image: Any, user: str) -> None:
        """A template's start command runs in the background; its ready command is retried until
        it succeeds, so a sandbox is handed out only once its service answers."""
        client = self.clients.get(sandbox_id, handle.envd_socket)
        if image.start_cmd:
            await envd_calls.start_background(client, token, image.start_cmd, user=user, tag="start-cmd")
        if image.ready_cmd:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + READY_TIMEOUT_S
            while True:
                done = await envd_calls.run(client, token, image.ready_cmd, user=user, timeout_s=30)
                if done.exit_code == 0:
                    return
                if loop.time() > deadline:
                    raise TierError(f"the template's ready command did not succeed within {READY_TIMEOUT_S:.0f}s: "
                                    f"{done.output.strip()[-300:]}")
                await asyncio.sleep(0.2)

    def get(self, sandbox_id: str) -> SandboxRecord:
        rec = self.store.get_live(sandbox_id)
        if rec is None or rec.state not in _VISIBLE:
            raise NotFound(sandbox_id)
        return rec

    def list(self) -> list[SandboxRecord]:
        return self.store.live([SandboxState.RUNNING, SandboxState.PAUSED])

    async def kill(self, sandbox_id: str, reason: str = "killed") -> bool:
        async with self._lock(sandbox_id):
            rec = self.store.get_live(sandbox_id)
            if rec is None:
                return False
            self._handles.pop(sandbox_id, None)
            self.store.update(sandbox_id, state=SandboxState.KILLED.value, killed_at=_now(), kill_reason=reason)
            await self.metering.egress(sandbox_id, self.egress.audit)
            self.metering.ended(sandbox_id, reason)
            await self._destroy_quietly(sandbox_id, Path(rec.workdir))
        self._locks.pop(sandbox_id, None)
        for hook in self.on_kill:
            result = hook(sandbox_id)
            if inspect.isawaitable(result):
                await result
        return True

    async def set_timeout(self, sandbox_id: str, seconds: int) -> SandboxRecord:
        timeout = resolve_timeout(seconds, self.settings.default_timeout_s, self.settings.ceilings)
        rec = self.get(sandbox_id)
        rec = self.store.update(rec.sandbox_id, end_at=_now() + timedelta(seconds=timeout))
        assert rec is not None
        self._wake.set()
        return rec

    async def refresh(self, sandbox_id: str, seconds: int) -> SandboxRecord:
        """E2B's `refreshes`: extend the lifetime, never shorten it."""
        rec = self.get(sandbox_id)
        new_end = max(rec.end_at, _now() + timedelta(seconds=resolve_timeout(seconds, 0, self.settings.ceilings)))
        rec = self.store.update(sandbox_id, end_at=new_end)
        assert rec is not None
        return rec

    async def pause(self, sandbox_id: str) -> bool:
        async with self._lock(sandbox_id):
            rec = self.get(sandbox_id)
            if rec.state == SandboxState.PAUSED.value:
                return False
            await self.tier.freeze(sandbox_id)
            self.store.update(sandbox_id, state=SandboxState.PAUSED.value)
            self.metering.paused(sandbox_id)
            return True

    async def connect(self, sandbox_id: str, timeout: int | None) -> tuple[SandboxRecord, bool]:
        """Connect to a running sandbox or resume a paused one; returns (record, resumed)."""
        async with self._lock(sandbox_id):
            rec = self.get(sandbox_id)
            resumed = False
            if rec.state == SandboxState.PAUSED.value:
                await self.tier.thaw(sandbox_id)
                resumed = True
                self.metering.resumed(sandbox_id)
            fields: dict[str, object] = {"state": SandboxState.RUNNING.value}
            if timeout is not None or resumed:
                t = resolve_timeout(timeout, self.settings.default_timeout_s, self.settings.ceilings)
                new_end = _now() + timedelta(seconds=t)
                fields["end_at"] = new_end if resumed else max(rec.end_at, new_end)
            rec = self.store.update(sandbox_id, **fields)
            assert rec is not None
        self._wake.set()
        return rec, resumed

    async def usage(self, sandbox_id: str) -> ResourceUsage:
        rec = self.get(sandbox_id)
        return await self.tier.usage(sandbox_id, Path(rec.workdir))

    def envd_socket(self, sandbox_id: str) -> tuple[SandboxRecord | None, Path | None]:
        """The socket of a client-visible sandbox (never of a pooled or half-made one)."""
        rec = self.store.get_live(sandbox_id)
        if rec is None or rec.state not in _VISIBLE:
            return None, None
        handle = self._handles.get(sandbox_id)
        return rec, (handle.envd_socket if handle else None)

    def handle(self, sandbox_id: str) -> SandboxHandle | None:
        return self._handles.get(sandbox_id)

    # --- timeouts and dead sandboxes ----------------------------------------------------------

    async def _purge_templates_forever(self) -> None:
        """Retired templates wait in the store's trash until no sandbox mounts them. This runs
        apart from the reaper: purging takes the store's lock, which a template build may hold
        for minutes, and timeouts must never wait for that."""
        trash = getattr(self.templates, "root", None)
        while True:
            await asyncio.sleep(TRASH_PURGE_INTERVAL_S)
            if trash is None or not any((Path(trash) / ".trash").glob("*")):
                continue
            try:
                await asyncio.to_thread(self.templates.purge_trash)
            except Exception:  # noqa: BLE001
                log.exception("purging retired templates failed")

    async def _reap_forever(self) -> None:
        while True:
            try:
                wait = await self._reap_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the reaper must survive anything
                log.exception("reaper iteration failed")
                wait = 1.0
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=wait)
            except asyncio.TimeoutError:
                pass

    async def _reap_once(self) -> float:
        now = _now()
        next_wait = 2.0  # also how often we look for sandboxes that died on their own
        for rec in self.store.live([SandboxState.RUNNING, SandboxState.PAUSED]):
            if rec.end_at <= now:
                if rec.on_timeout == "pause" and rec.state == SandboxState.RUNNING.value:
                    log.info("sandbox %s timed out: pausing", rec.sandbox_id)
                    await self.pause(rec.sandbox_id)
                    self.store.update(rec.sandbox_id, end_at=now + timedelta(days=30))
                else:
                    log.info("sandbox %s timed out: killing", rec.sandbox_id)
                    await self.kill(rec.sandbox_id, reason="timeout")
                continue
            if rec.state == SandboxState.RUNNING.value and not self.tier.is_alive(rec.sandbox_id):
                log.warning("sandbox %s exited on its own", rec.sandbox_id)
                await self.kill(rec.sandbox_id, reason="exited")
                continue
            next_wait = min(next_wait, (rec.end_at - now).total_seconds())
        return max(0.01, next_wait)
