"""Where a volume's traffic goes: to the one node whose sandboxes have the volume mounted.

A volume is one ext4 image on the shared volumes directory (CORRAL_VOLUMES_DIR, the same path
on every node), and an ext4 filesystem may be mounted by one machine at a time. So while live
sandboxes mount a volume, the node they run on holds it: a create that mounts it is placed on
that node, and the volume content API (the SDK's `Volume` file operations, each a mount of the
image) is served there. When that node cannot take the create (lost, draining, full), the create
is refused with a 409 that says so: mounting the image on a second machine could corrupt it. A
volume no live sandbox mounts is free, and any node may take it (its data is on the shared
directory); every replica sends a free volume's creates and content calls to the same node, its
home (rendezvous hashing of the volume id over the ready nodes), so a content call never mounts
the image on one machine while a new sandbox mounts it on another. Only a home without room
leaves a free volume's create to ordinary placement. The node checks again when it writes its
rows (`store.volumes.claim`), so two replicas placing creates of one free volume at the same
moment cannot split it either.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Sequence

from corral.cluster.directory import NodeDirectory
from corral.errors import Conflict
from corral.lifecycle.volumes import TEAM
from corral.store import NodeRecord, NodeState


def volume_names(doc: object) -> list[str]:
    """The volume names a create body mounts (a malformed body is the node's 400 to give)."""
    mounts = doc.get("volumeMounts") if isinstance(doc, dict) else None
    if not isinstance(mounts, list):
        return []
    return sorted({m["name"] for m in mounts if isinstance(m, dict) and isinstance(m.get("name"), str)})


def parse(body: bytes) -> object:
    try:
        return json.loads(body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def home(volume_id: str, nodes: Sequence[NodeRecord]) -> NodeRecord | None:
    """The node every replica picks for a free volume (highest random weight: when a node comes
    or goes, only the volumes whose home it was or becomes move)."""
    if not nodes:
        return None
    return max(nodes, key=lambda n: hashlib.sha256(f"{volume_id}\0{n.node_id}".encode()).digest())


class VolumeHolders:
    def __init__(self, directory: NodeDirectory) -> None:
        self.directory = directory

    async def node_for(self, names: list[str]) -> NodeRecord | None:
        """The node a create mounting `names` must go to; None when every one of them is free."""
        if not names:
            return None
        holders = await asyncio.to_thread(self.directory.store.volumes.holders, TEAM, names)
        nodes = sorted({n or "" for held in holders.values() for n in held})
        if not nodes:
            return None
        if len(nodes) > 1:
            where = "; ".join(f"{name!r} on node {', '.join(sorted(n or '?' for n in held))}"
                              for name, held in sorted(holders.items()))
            raise Conflict(f"the volumes this sandbox mounts are held by different nodes ({where}); a "
                           "volume's filesystem is mounted by one machine at a time, so one sandbox can "
                           "mount only volumes that are free or held by the same node")
        name = sorted(holders)[0]
        return await self._usable(nodes[0], name)

    async def home_for(self, names: list[str]) -> NodeRecord | None:
        """Where a create of free volumes goes first: the home of the first (None: no volumes)."""
        ids = await asyncio.to_thread(self.directory.store.volumes.ids_of, TEAM, names)
        if not ids:
            return None
        return home(ids[sorted(ids)[0]], await self.directory.ready())

    async def node_for_content(self, volume_id: str) -> NodeRecord | None:
        """The node that serves a volume's content API: its holder, else its home (None: unknown)."""
        exists, held = await asyncio.to_thread(self.directory.store.volumes.holder_of, volume_id)
        if not exists:
            return None
        if not held:
            return home(volume_id, await self.directory.ready())
        return await self._usable(sorted(n or "" for n in held)[0], volume_id)

    async def _usable(self, node_id: str, volume: str) -> NodeRecord:
        node = await self.directory.node(node_id)
        if node is None or node.state != NodeState.READY.value:
            await self.directory.refresh()   # the cache may be a second old
            node = await self.directory.node(node_id)
        if node is None or node.state == NodeState.LOST.value:
            raise Conflict(f"volume {volume!r} is mounted on node {node_id or '?'}, which is lost (it stopped "
                           "heartbeating): its sandboxes there may still write to the volume, so no other "
                           "node may mount it until that node comes back and reconciles, or its sandboxes end")
        if node.state != NodeState.READY.value:
            raise Conflict(f"volume {volume!r} is mounted on node {node_id}, which is {node.state} and takes no "
                           "new sandboxes; the volume can move to another node once its sandboxes there end")
        return node
