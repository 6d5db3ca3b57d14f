"""What an API replica knows about the cluster: the nodes, and which node owns which sandbox.

Everything here is a cache of the database, rebuilt at any time from it, so a replica can die
at any moment without losing anything. The node list is re-read every `refresh_s` (and at once
when a request names a node the cache does not know); a sandbox's owner never changes, so it is
cached until the sandbox is gone. Every replica also runs the lost-node check (one UPDATE ...
RETURNING that replicas may run at the same moment: each lost node is reported once).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict

from corral.store import NodeRecord, NodeState, SandboxRecord, SandboxState, Store

log = logging.getLogger("corral.cluster")

_OWNER_CACHE = 200_000


class NodeDirectory:
    def __init__(self, store: Store, grace_s: float, refresh_s: float = 1.0) -> None:
        self.store = store
        self.grace_s = grace_s
        self.refresh_s = min(refresh_s, grace_s / 4)
        self._nodes: dict[str, NodeRecord] = {}
        self._read_at = 0.0
        self._owners: OrderedDict[str, str] = OrderedDict()
        self._task: asyncio.Task[None] | None = None

    # --- nodes ---------------------------------------------------------------------------------

    async def refresh(self) -> None:
        nodes = await asyncio.to_thread(self.store.nodes.list)
        self._nodes = {n.node_id: n for n in nodes}
        self._read_at = time.monotonic()

    async def nodes(self) -> list[NodeRecord]:
        if time.monotonic() - self._read_at > self.refresh_s:
            await self.refresh()
        return list(self._nodes.values())

    async def node(self, node_id: str) -> NodeRecord | None:
        if node_id not in self._nodes or time.monotonic() - self._read_at > self.refresh_s:
            await self.refresh()
        return self._nodes.get(node_id)

    async def ready(self) -> list[NodeRecord]:
        return [n for n in await self.nodes() if n.state == NodeState.READY.value]

    async def live_counts(self) -> dict[str, int]:
        return await asyncio.to_thread(self.store.nodes.live_counts)

    # --- sandboxes -----------------------------------------------------------------------------

    async def owner(self, sandbox_id: str) -> str | None:
        """The node that owns a live sandbox, None when there is no such sandbox (or it is not on a node)."""
        node_id = self._owners.get(sandbox_id)
        if node_id is not None:
            self._owners.move_to_end(sandbox_id)
            return node_id
        rec: SandboxRecord | None = await asyncio.to_thread(self.store.get, sandbox_id)
        live = {st.value for st in SandboxState.live()}
        if rec is None or rec.node_id is None or rec.state not in live:
            return None
        self._owners[sandbox_id] = rec.node_id
        if len(self._owners) > _OWNER_CACHE:
            self._owners.popitem(last=False)
        return rec.node_id

    def forget(self, sandbox_id: str) -> None:
        self._owners.pop(sandbox_id, None)

    # --- the lost-node check -------------------------------------------------------------------

    async def check_lost(self) -> list[str]:
        lost = await asyncio.to_thread(self.store.nodes.mark_lost, self.grace_s)
        for node_id in lost:
            log.warning("node %s missed its heartbeats for %.0fs: marked lost", node_id, self.grace_s)
        if lost:
            await self.refresh()
        return lost

    async def _watch(self) -> None:
        while True:
            try:
                await self.check_lost()
                await self.refresh()
            except Exception:  # noqa: BLE001 - the database may be away for a moment
                log.exception("checking the nodes failed")
            await asyncio.sleep(self.refresh_s)

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name="corral-node-watch")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
