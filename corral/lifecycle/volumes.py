"""Volumes as the lifecycle sees them: the store's rows joined with the images on disk.

`create` makes the image, then the row (a crash in between leaves an image no row names, never a
row without its image); `delete` is refused with a 409 while a live sandbox mounts the volume,
including a paused one (its resume mounts the volume again); `binds` turns a create's
(name, path) pairs into what the tier mounts. A volume is shared, never copied: a fork mounts
its source's volumes, a snapshot holds none of a volume's files (a sandbox started from one
mounts what its own create asks for), and a paused sandbox keeps its volumes in use.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path

from corral.errors import Conflict, InvalidRequest, NotFound
from corral.ids import new_access_token
from corral.runtime.base import VolumeBind
from corral.store import NameTaken, Store, VolumeRecord
from corral.volumes import MIN_SIZE_MB, VolumeStorage, check_mounts, check_name, new_volume_id

# corral has one team per server: every API key of a server sees every sandbox, so every volume.
TEAM = "corral"


class VolumeNotFound(NotFound):
    def __init__(self, volume_id: str) -> None:
        super().__init__(f"volume {volume_id} not found")


class Volumes:
    def __init__(self, store: Store, root: Path, default_size_mb: int, max_size_mb: int) -> None:
        self.store = store
        self.storage = VolumeStorage(root)
        self.default_size_mb = default_size_mb
        self.max_size_mb = max_size_mb
        self._lock = asyncio.Lock()

    async def create(self, name: str, size_mb: int | None = None) -> VolumeRecord:
        check_name(name)
        size = self.default_size_mb if size_mb is None else size_mb
        if not MIN_SIZE_MB <= size <= self.max_size_mb:
            raise InvalidRequest(f"volume size must be {MIN_SIZE_MB}..{self.max_size_mb} MB")
        async with self._lock:
            if self.store.volumes.by_name(TEAM, name) is not None:
                raise Conflict(f"a volume named {name!r} exists already")
            volume_id = new_volume_id()
            await asyncio.to_thread(self.storage.create, volume_id, size)
            rec = VolumeRecord(volume_id=volume_id, team=TEAM, name=name, token=new_access_token(),
                               size_mb=size, created_at=datetime.now(timezone.utc))
            try:
                self.store.volumes.add(rec)
            except NameTaken:   # another replica made it between our check and our insert
                await asyncio.to_thread(self.storage.remove, volume_id)
                raise Conflict(f"a volume named {name!r} exists already") from None
        return rec

    def list(self) -> list[VolumeRecord]:
        return self.store.volumes.list(TEAM)

    def get(self, volume_id: str) -> VolumeRecord:
        rec = self.store.volumes.get(TEAM, volume_id)
        if rec is None:
            raise VolumeNotFound(volume_id)
        return rec

    def used_bytes(self, rec: VolumeRecord) -> int:
        return self.storage.allocated_bytes(rec.volume_id)

    async def delete(self, volume_id: str) -> None:
        async with self._lock:
            rec = self.get(volume_id)
            users = self.store.volumes.users(rec.volume_id)
            if users:
                raise Conflict(f"volume {rec.name!r} is in use by sandbox{'es' if len(users) > 1 else ''} "
                               f"{', '.join(users)}")
            self.store.volumes.remove(rec.volume_id)
            await asyncio.to_thread(self.storage.remove, rec.volume_id)

    # --- mounts ---------------------------------------------------------------------------------

    def resolve(self, mounts: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """A create's (volume name, path) pairs as (volume id, path); 400 for an unknown name."""
        out = []
        for name, path in check_mounts(mounts):
            rec = self.store.volumes.by_name(TEAM, name)
            if rec is None or not self.storage.exists(rec.volume_id):
                raise InvalidRequest(f"volume {name!r} not found")
            out.append((rec.volume_id, path))
        return out

    def binds(self, mounts: list[tuple[str, str]]) -> tuple[VolumeBind, ...]:
        """What the tier mounts for (volume id, path) pairs (a create's, or a sandbox's rows)."""
        return tuple(VolumeBind(image=self.storage.image(vid), target=path) for vid, path in mounts)

    def names_of(self, sandbox_id: str) -> list[dict[str, str]]:
        """E2B's `volumeMounts` of a sandbox: [{"name", "path"}]."""
        out = []
        for vid, path in self.store.volumes.mounts_of(sandbox_id):
            rec = self.store.volumes.get(TEAM, vid)
            out.append({"name": rec.name if rec else vid, "path": path})
        return out
