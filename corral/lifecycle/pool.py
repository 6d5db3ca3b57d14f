"""Warm pools: sandboxes started before anyone asks, handed out on create.

Start-up work that cannot be made fast (a Jupyter kernel importing numpy and pandas takes about a
second) is done ahead of time. A pooled sandbox runs with an access token only the server knows
and no client env vars; claiming it swaps in the client's token and env vars through envd's
server-only hand-over route, over the host-side socket. A pooled sandbox is invisible to the API (not
listed, not proxied) until it is claimed, and a claimed one stays invisible (`starting`) until
the starter has attached its network. A restarted server discards pooled sandboxes rather than
trusting them.

A pool is named by its template (`base`: sandboxes of the template's own tier) or by template and
tier (`base@gvisor`: for creates that raise isolation to gVisor, whose cold start is a second).

The pool depends on the starter and the teardown, never on the service façade.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta

from corral.errors import InvalidRequest
from corral.ids import new_access_token
from corral.lifecycle import timing
from corral.lifecycle.deadlines import POOL_RENEW_S, pool_lease_end, self_end
from corral.lifecycle.images import image_config
from corral.lifecycle.parts import Parts, now
from corral.lifecycle.starter import Starter, StartPlan
from corral.lifecycle.teardown import Teardown
from corral.lifecycle.tiers import attaches_at_boot, choose_isolation
from corral.runtime.base import SandboxHandle
from corral.store import SandboxRecord, SandboxState
from corral.wire.client import EnvdError, login_shell

log = logging.getLogger("corral.pool")

POOLED_LIFETIME = timedelta(days=3650)  # pooled sandboxes never time out; claiming sets the real end
REFILL_DELAY_S = 0.25


class WarmPool:
    def __init__(self, parts: Parts, starter: Starter, teardown: Teardown, sizes: dict[str, int]) -> None:
        self.parts = parts
        self.starter = starter
        self.teardown = teardown
        self.sizes = {name: n for name, n in sizes.items() if n > 0}
        self._ready: dict[str, list[str]] = {name: [] for name in self.sizes}
        self._filling: dict[str, asyncio.Task[None]] = {}
        self._renewing: asyncio.Task[None] | None = None
        # A lease renewal never lands after a claim's hand-over (it would cut the client's deadline).
        self._lease_lock = asyncio.Lock()
        self._closed = False

    def start(self) -> None:
        for name in list(self.sizes):
            template, tier = split_pool_name(name)
            if not self.parts.templates.exists(template):
                log.info("warm pool for %s is off: the template is not built", name)
                del self.sizes[name]
                continue
            if tier is not None:
                image = image_config(self.parts.templates.get(template))
                try:
                    choose_isolation(self.parts.settings, self.parts.tier,
                                     image.isolation if image else None, tier)
                except InvalidRequest as exc:
                    log.warning("warm pool %s is off: %s", name, exc)
                    del self.sizes[name]
                    continue
            self._refill(name)
        self._renewing = asyncio.create_task(self._renew_leases(), name="corral-pool-leases")

    async def _renew_leases(self) -> None:
        """Keep moving the pooled sandboxes' own deadlines (their lease) while we live."""
        while not self._closed:
            await asyncio.sleep(POOL_RENEW_S)
            for ids in list(self._ready.values()):
                for sid in list(ids):
                    async with self._lease_lock:
                        handle = self.parts.handles.get(sid)
                        rec = self.parts.store.get(sid)
                        if sid not in ids or handle is None or rec is None:
                            continue   # claimed meanwhile
                        try:
                            await self.parts.envd(sid, handle, rec.envd_access_token).set_deadline(pool_lease_end())
                        except EnvdError as exc:
                            log.warning("renewing the lease of pooled sandbox %s failed: %s", sid, exc.message)

    async def close(self) -> None:
        """Stop filling and kill every pooled sandbox, including one a cancelled fill had just
        started: the store, not the ready lists, says which sandboxes are pooled."""
        self._closed = True
        for task in self._filling.values():
            task.cancel()
        if self._renewing is not None:
            self._renewing.cancel()
        await asyncio.gather(*self._filling.values(), *([self._renewing] if self._renewing else []),
                             return_exceptions=True)
        for ids in self._ready.values():
            ids.clear()
        for rec in self.parts.store.owned([SandboxState.POOLED]):
            await self.teardown.kill(rec.sandbox_id, reason="pool closed")

    def ready(self, template: str) -> int:
        return len(self._ready.get(template, []))

    async def resize(self, pool: str, size: int) -> None:
        """Keep `size` ready in `pool` from now on (a cluster node's share of the cluster's pool,
        corral/cluster/pools.py): a larger share fills, a smaller one kills the extras."""
        if self._closed or (size > 0 and not self.parts.templates.exists(split_pool_name(pool)[0])):
            return
        self.sizes[pool] = size
        ready = self._ready.setdefault(pool, [])
        if len(ready) < size:
            self._refill(pool)
        while len(ready) > size:
            await self.teardown.kill(ready.pop(), reason="pool share shrank")

    def _refill(self, template: str, delay: float = 0.0) -> None:
        task = self._filling.get(template)
        if self._closed or (task is not None and not task.done()):
            return
        self._filling[template] = asyncio.create_task(self._fill(template, delay), name=f"corral-pool-{template}")

    async def _fill(self, pool: str, delay: float = 0.0) -> None:
        # After a claim, let the client's first requests run before we compete for the CPU.
        await asyncio.sleep(delay)
        failures = 0
        template, tier = split_pool_name(pool)
        while not self._closed and len(self._ready[pool]) < self.sizes[pool]:
            t0 = time.perf_counter()
            try:
                tmpl = self.parts.templates.get(template)
                image = image_config(tmpl)
                rec = await self.starter.launch(
                    tmpl, image, self.starter.limits(tmpl), env=image.env if image else {}, alias=template,
                    timeout=int(POOLED_LIFETIME.total_seconds()), metadata={}, pooled=True,
                    isolation=tier,
                )
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a pool that cannot fill must not take the server down
                failures += 1
                log.exception("warm pool %s could not start a sandbox (attempt %d)", pool, failures)
                await asyncio.sleep(min(60.0, 2.0**failures))
                continue
            failures = 0
            await self._warm(rec)
            # (no await between this check and the append: a resize may shrink the share at any await)
            if len(self._ready[pool]) >= self.sizes[pool]:   # the share shrank meanwhile (resize)
                await self.teardown.kill(rec.sandbox_id, reason="pool share shrank")
                break
            self._ready[pool].append(rec.sandbox_id)
            self.parts.metering.pool_refill(pool, time.perf_counter() - t0)
            log.info("warm pool %s: %d/%d ready", pool, len(self._ready[pool]), self.sizes[pool])

    async def _warm(self, rec: SandboxRecord) -> None:
        """Run one login shell through envd before the sandbox is handed out: the first request
        of a freshly forked daemon pays for copy-on-write faults and cold caches, and that cost
        belongs to the pool, not to a client's first command."""
        handle = self.parts.handles.get(rec.sandbox_id)
        if handle is None:
            return
        try:
            await self.parts.envd(rec.sandbox_id, handle, rec.envd_access_token).run(login_shell("true"), timeout=30)
        except EnvdError:
            log.warning("warming pooled sandbox %s failed", rec.sandbox_id)

    def _fits(self, rec: SandboxRecord, plan: StartPlan) -> bool:
        """A pooled sandbox was started with its template's limits; a request that narrows them
        needs a sandbox of its own."""
        lim = plan.limits
        if rec.tier != plan.isolation:
            return False       # a request that raised isolation needs a sandbox of its tier
        if plan.egress.grants_egress and attaches_at_boot(self.parts.tier, rec.tier):
            return False       # its network must be attached before it boots
        return (rec.cpu_count, rec.memory_mb, rec.disk_mb, rec.pids_max) == \
            (lim.cpu_count, lim.memory_mb, lim.disk_mb, lim.pids_max)

    async def claim(self, plan: StartPlan) -> SandboxRecord | None:
        """Hand a pooled sandbox over to a client's plan, or None when none fits. The record
        comes back in `starting`: the starter's `finish` attaches the network and makes it visible."""
        template = pool_name(plan.template.name, plan.isolation, self.sizes)
        ids = self._ready.get(template)
        parts = self.parts
        t0 = time.perf_counter()
        while ids:
            rec = parts.store.get(ids[0])
            if rec is not None and not self._fits(rec, plan):
                return self._missed(template)
            sid = ids.pop(0)
            self._refill(template, delay=REFILL_DELAY_S)
            handle = parts.handles.get(sid)
            # Never hand out a sandbox that ran anything: one that is not pooled in the store, or
            # that was ever given to a client (the usage store remembers every hand-out), is killed.
            if (rec is None or handle is None or rec.state != SandboxState.POOLED.value
                    or parts.metering.was_handed_out(sid) or not parts.tier.is_alive(sid)):
                await self.teardown.kill(sid, reason="pooled sandbox died")
                continue
            token = new_access_token()
            started = now()
            end_at = started + timedelta(seconds=plan.timeout)
            if not await self._hand_over(sid, handle, rec.envd_access_token, token, plan, end_at):
                await self.teardown.kill(sid, reason="pooled sandbox unhealthy")
                continue
            req = plan.request
            with timing.phase("store"):
                claimed = parts.store.update(
                    sid, state=SandboxState.STARTING.value, envd_access_token=token,
                    traffic_access_token=new_access_token(), started_at=started,
                    end_at=end_at, metadata_=dict(req.metadata), alias=req.template,
                    on_timeout="pause" if req.auto_pause else "kill",
                )
            # (its durable event is written with the create's usage row, in metering.started)
            parts.metering.pool_hit(template, time.perf_counter() - t0, sandbox_id=sid)
            return claimed
        return self._missed(template)

    async def _hand_over(self, sid: str, handle: SandboxHandle, pool_token: str | None, token: str,
                         plan: StartPlan, end_at: datetime) -> bool:
        """Give the sandbox its client's token, env vars and own deadline; False if envd failed."""
        try:
            # Through the sandbox's shared client: the connection stays open for the first command.
            async with self._lease_lock:
                with timing.phase("handover"):
                    await self.parts.envd(sid, handle, pool_token).hand_over(
                        token, plan.env, end_at=self_end(end_at, "pause" if plan.request.auto_pause else "kill"))
        except EnvdError:
            log.exception("claiming pooled sandbox %s failed", sid)
            return False
        return True

    def _missed(self, template: str) -> None:
        """A create for a pooled template that the pool could not serve is counted as a miss."""
        if template in self.sizes:
            self.parts.metering.pool_miss(template)
        return None


def split_pool_name(name: str) -> tuple[str, str | None]:
    """`base@gvisor` -> ("base", "gvisor"); `base` -> ("base", None): the template's own tier."""
    template, _, tier = name.partition("@")
    return template, tier or None


def pool_name(template: str, isolation: str, sizes: dict[str, int]) -> str:
    """The pool a create of ``template`` on ``isolation`` draws from: the tier's own pool when
    there is one, else the template's (whose sandboxes `_fits` then checks for their tier)."""
    tiered = f"{template}@{isolation}"
    return tiered if tiered in sizes else template
