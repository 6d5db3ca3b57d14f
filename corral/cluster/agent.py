"""A node agent's half of the registry: register at start, heartbeat, re-register when lost.

Registration is an upsert keyed by the node's id, so a restarted agent takes its old row back
after its sandbox service re-adopted what still runs (the lifecycle's recovery, scoped to this
node's own rows). A heartbeat the registry refuses means some API replica marked this node lost
while it was silent (a pause, a partition): the agent registers again, which makes the node
ready, and its sandboxes are reachable again. A graceful stop marks the node lost at once, so
API replicas answer its sandboxes' requests with a clear error instead of trying a closed port.
After each heartbeat the agent resizes its share of the cluster's warm pools (pools.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator

from corral import __version__
from corral.cluster.pools import shares
from corral.lifecycle import SandboxService
from corral.runtime.gvisor.runsc import runsc_installed
from corral.store import NodeInfo, NodeState

log = logging.getLogger("corral.cluster")


def _meminfo() -> dict[str, int]:
    out: dict[str, int] = {}
    with open("/proc/meminfo") as f:
        for line in f:
            name, _, rest = line.partition(":")
            out[name] = int(rest.split()[0]) // 1024
    return out


class NodeAgent:
    def __init__(self, service: SandboxService) -> None:
        self.service = service
        self.settings = service.settings
        assert self.settings.node_id and self.settings.advertise_url
        self.node_id: str = self.settings.node_id
        self._task: asyncio.Task[None] | None = None

    def info(self) -> NodeInfo:
        mem = _meminfo()
        tiers = [self.settings.tier] + (["gvisor"] if self.settings.tier != "gvisor" and runsc_installed() else [])
        return NodeInfo(node_id=self.node_id, advertise_url=self.settings.advertise_url or "", version=__version__,
                        cpu_count=os.cpu_count() or 1, memory_mb=mem.get("MemTotal", 0),
                        memory_free_mb=mem.get("MemAvailable", 0), tiers=tuple(tiers),
                        templates=tuple(self._templates()))

    def _templates(self) -> list[str]:
        return sorted({name for t in self.service.parts.templates.list() for name in (t.name, *t.aliases)})

    def _own_live(self) -> int:
        return len(self.service.store.owned())

    async def register(self) -> None:
        info = await asyncio.to_thread(self.info)
        rec = await asyncio.to_thread(self.service.store.nodes.register, info)
        log.info("node %s registered at %s (%d sandboxes)", self.node_id, info.advertise_url, rec.sandboxes)

    async def beat(self) -> None:
        """One heartbeat; re-register when the registry says this node was marked lost."""
        def send() -> bool:
            return self.service.store.nodes.heartbeat(
                self.node_id, memory_free_mb=_meminfo().get("MemAvailable", 0), sandboxes=self._own_live(),
                templates=self._templates())
        if not await asyncio.to_thread(send):
            log.warning("node %s was marked lost while silent: registering again", self.node_id)
            await self.register()
        await self.rebalance()

    async def rebalance(self) -> None:
        """Keep this node's share of the cluster's warm pools (pools.py)."""
        pool = self.service.pool
        totals = self.settings.cluster_pool
        if pool is None or not totals:
            return
        ready = [n.node_id for n in await asyncio.to_thread(self.service.store.nodes.list, [NodeState.READY])]
        for template, share in shares(totals, ready, self.node_id).items():
            if pool.sizes.get(template, 0) != share:
                log.info("node %s keeps %d of the cluster's %d warm %s (%d ready nodes)", self.node_id, share,
                         totals[template], template, len(ready))
                await pool.resize(template, share)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.settings.node_heartbeat_s)
            try:
                await self.beat()
            except Exception:  # noqa: BLE001 - a database hiccup must not end the heartbeats
                log.exception("heartbeat of node %s failed", self.node_id)

    def _warn_unshared(self) -> None:
        shared = {"CORRAL_VOLUMES_DIR": self.settings.volumes_root, "CORRAL_SNAPSHOTS_DIR": self.settings.snapshots_root,
                  "CORRAL_TEMPLATE_DEPOT": os.environ.get("CORRAL_TEMPLATE_DEPOT")}
        for name in (n for n, v in shared.items() if not v):
            log.warning("node %s: %s is not set, so what it holds stays on this node's disk (docs/DEPLOY.md: "
                        "point it at a directory every node shares)", self.node_id, name)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        self._warn_unshared()
        await self.register()
        try:
            await self.rebalance()
        except Exception:  # noqa: BLE001 - the next heartbeat tries again
            log.exception("node %s could not size its warm pools", self.node_id)
        self._task = asyncio.create_task(self._run(), name="corral-node-heartbeat")
        try:
            yield
        finally:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.service.store.nodes.set_state, self.node_id, NodeState.LOST)
            log.info("node %s stopped: marked lost until it registers again", self.node_id)


def heartbeat_hook(service: SandboxService) -> contextlib.AbstractAsyncContextManager[None]:
    """The node role's lifespan hook (corral.api.create_app `hooks`)."""
    return NodeAgent(service).running()
