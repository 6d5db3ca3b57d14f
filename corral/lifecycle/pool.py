"""Warm pools: sandboxes started before anyone asks, handed out on create.

Start-up work that cannot be made fast (a Jupyter kernel importing numpy and pandas takes about a
second) is done ahead of time. A pooled sandbox runs with an access token only the server knows
and no client env vars; claiming it swaps in the client's token and env vars through envd's
server-only `/.corral/init` route, over the host-side socket. A pooled sandbox is invisible to the
API (not listed, not proxied) until it is claimed, and a restarted server discards pooled
sandboxes rather than trusting them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

import httpx


from corral.ids import new_access_token
from corral.lifecycle import envd_calls
from corral.lifecycle.images import image_config
from corral.store import SandboxRecord, SandboxState

if TYPE_CHECKING:
    from corral.lifecycle.service import CreateParams, SandboxService


log = logging.getLogger("corral.pool")

POOLED_LIFETIME = timedelta(days=3650)
REFILL_DELAY_S = 0.25  # pooled sandboxes never time out; claiming sets the real end


class WarmPool:
    def __init__(self, service: "SandboxService", sizes: dict[str, int]) -> None:
        self.service = service
        self.sizes = {name: n for name, n in sizes.items() if n > 0}
        self._ready: dict[str, list[str]] = {name: [] for name in self.sizes}
        self._filling: dict[str, asyncio.Task[None]] = {}
        self._closed = False

    def start(self) -> None:
        for name in list(self.sizes):
            if not self.service.templates.exists(name):
                log.info("warm pool for %s is off: the template is not built", name)
                del self.sizes[name]
                continue
            self._refill(name)

    async def close(self) -> None:
        """Stop filling and kill every pooled sandbox, including one a cancelled fill had just
        started: the store, not the ready lists, says which sandboxes are pooled."""
        self._closed = True
        for task in self._filling.values():
            task.cancel()
        await asyncio.gather(*self._filling.values(), return_exceptions=True)
        for ids in self._ready.values():
            ids.clear()
        for rec in self.service.store.live([SandboxState.POOLED]):
            await self.service.kill(rec.sandbox_id, reason="pool closed")

    def ready(self, template: str) -> int:
        return len(self._ready.get(template, []))

    def _refill(self, template: str, delay: float = 0.0) -> None:
        task = self._filling.get(template)
        if self._closed or (task is not None and not task.done()):
            return
        self._filling[template] = asyncio.create_task(self._fill(template, delay), name=f"corral-pool-{template}")

    async def _fill(self, template: str, delay: float = 0.0) -> None:
        # After a claim, let the client's first requests run before we compete for the CPU.
        await asyncio.sleep(delay)
        failures = 0
        while not self._closed and len(self._ready[template]) < self.sizes[template]:
            t0 = time.perf_counter()
            try:
                tmpl = self.service.template(template)
                rec = await self.service.start_sandbox(
                    tmpl, image_config(tmpl), env_vars={}, pooled=True, alias=template,
                    timeout=int(POOLED_LIFETIME.total_seconds()), metadata={},
                )
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a pool that cannot fill must not take the server down
                failures += 1
                log.exception("warm pool for %s could not start a sandbox (attempt %d)", template, failures)
                await asyncio.sleep(min(60.0, 2.0**failures))
                continue
            failures = 0
            await self._warm(rec)
            self._ready[template].append(rec.sandbox_id)
            self.service.metering.pool_refill(template, time.perf_counter() - t0)
            log.info("warm pool %s: %d/%d ready", template, len(self._ready[template]), self.sizes[template])

    async def _warm(self, rec: SandboxRecord) -> None:
        """Run one login shell through envd before the sandbox is handed out: the first request
        of a freshly forked daemon pays for copy-on-write faults and cold caches, and that cost
        belongs to the pool, not to a client's first command."""
        handle = self.service.handle(rec.sandbox_id)
        if handle is None:
            return
        try:
            await envd_calls.run(self.service.clients.get(rec.sandbox_id, handle.envd_socket),
                                 rec.envd_access_token, "true", timeout_s=30)
        except httpx.HTTPError:
            log.warning("warming pooled sandbox %s failed", rec.sandbox_id)

    async def claim(self, template: str, p: "CreateParams", timeout: int, env: dict[str, str]) -> SandboxRecord | None:
        """Hand a pooled sandbox to a client, or None when the pool for `template` is empty.
        `env` is the sandbox's whole environment: the template's ENV under the client's envVars."""
        ids = self._ready.get(template)
        t0 = time.perf_counter()
        while ids:
            sid = ids.pop(0)
            self._refill(template, delay=REFILL_DELAY_S)
            rec = self.service.store.get(sid)
            handle = self.service.handle(sid)
            # Never hand out a sandbox that ran anything: one that is not pooled in the store, or
            # that was ever given to a client (the usage store remembers every hand-out), is killed.
            if (rec is None or handle is None or rec.state != SandboxState.POOLED.value
                    or self.service.metering.was_handed_out(sid) or not self.service.tier.is_alive(sid)):
                await self.service.kill(sid, reason="pooled sandbox died")
                continue
            token = new_access_token()
            try:
                # Through the sandbox's shared client: the connection stays open for the first command.
                c = self.service.clients.get(sid, handle.envd_socket)
                r = await c.post("/.corral/init", json={"accessToken": token, "envVars": env},
                                 headers={"X-Access-Token": rec.envd_access_token or ""}, timeout=10)
                r.raise_for_status()
            except (httpx.HTTPError, LookupError, ValueError):
                log.exception("claiming pooled sandbox %s failed", sid)
                await self.service.kill(sid, reason="pooled sandbox unhealthy")
                continue
            now = datetime.now(timezone.utc)
            claimed = self.service.store.update(
                sid, state=SandboxState.RUNNING.value, envd_access_token=token,
                traffic_access_token=new_access_token(), started_at=now,
                end_at=now + timedelta(seconds=timeout), metadata_=dict(p.metadata), alias=p.template,
                on_timeout="pause" if p.auto_pause else "kill",
            )
            self.service.metering.pool_hit(template, time.perf_counter() - t0)
            return claimed
        if template in self.sizes:
            self.service.metering.pool_miss(template)
        return None
