"""Named, persistent snapshots of a running sandbox, and sandboxes started from them.

A filesystem snapshot is layered: the template (read-only, shared, referenced by name) plus a
copy of the sandbox's writable layer, which holds only what the sandbox changed (a sparse
image: its size on disk is the diff, and that is the size reported). It is taken while the
source keeps running (frozen for the copy: `Tier.export_layer`). A sandbox created with a
snapshot's id as its template boots from a sparse copy of that layer, so any number start from
one snapshot at once. Full (memory) snapshots need a tier that can checkpoint memory; elsewhere
an explicit `memory: true` is refused with the mode that works, and an unset mode means the
best the tier can do (the snapshot says which it got).

A full snapshot is the same layering plus the tier's memory image of the source (`runsc
checkpoint`, the source restored in place at once) and the source's boot configuration: a
sandbox created from it is the tier's `restore` of that image under a new id
(`Starter.launch(memory=...)`), which then takes its own identity (`Starter.reidentify`).

Each snapshot is a directory `<data>/snapshots/<id>/` with `disk.img` and `snapshot.json`
(and, full, the memory image files and `boot-config.json`, 0600), written atomically (a
temporary directory renamed into place), so a crash leaves no half snapshot anyone can list.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from corral.errors import NotFound
from corral.lifecycle import boot
from corral.lifecycle.checkpoints import memory_checkpoints
from corral.lifecycle.errors import ModeUnsupported, TierFailed
from corral.lifecycle.parts import Parts, now
from corral.lifecycle.requests import CreateRequest
from corral.runtime.base import Limits, TierError
from corral.store import SandboxRecord, SandboxState

if TYPE_CHECKING:
    from corral.lifecycle.starter import StartPlan, Starter

SNAPSHOT_PREFIX = "snap-"
META = "snapshot.json"
LAYER = "disk.img"


class SnapshotNotFound(NotFound):
    def __init__(self, snapshot_id: str) -> None:
        super().__init__(f"snapshot {snapshot_id} not found")


@dataclass(frozen=True)
class Snapshot:
    snapshot_id: str
    names: list[str]
    sandbox_id: str
    template: str
    mode: str
    size_bytes: int
    created_at: str
    cpu_count: int
    memory_mb: int
    disk_mb: int
    pids_max: int
    metadata: dict[str, str] = field(default_factory=dict)
    isolation: str = ""       # the source's tier; a full snapshot restores only there

    @property
    def limits(self) -> Limits:
        return Limits(self.cpu_count, self.memory_mb, self.disk_mb, self.pids_max)


def is_snapshot_id(value: str) -> bool:
    rest = value[len(SNAPSHOT_PREFIX):]
    return value.startswith(SNAPSHOT_PREFIX) and len(rest) == 20 and all(c in "0123456789abcdef" for c in rest)


class Snapshots:
    def __init__(self, parts: Parts) -> None:
        self.parts = parts

    @property
    def root(self) -> Path:
        return self.parts.settings.snapshots_dir   # shared by every node of a cluster (docs/DEPLOY.md)

    def resolve_mode(self, mode: str | None, what: str, sandbox_id: str) -> str:
        """'full' or 'filesystem' for this tier: an explicit full is refused where memory cannot
        be saved, naming the mode that works; unset is the best the tier can do."""
        tier = self.parts.tier
        can_full = memory_checkpoints(tier, sandbox_id) is not None
        if mode is None:
            return "full" if can_full else "filesystem"
        if mode == "full" and not can_full:
            raise ModeUnsupported(f"the {tier.name} tier cannot save memory, so a full {what} is not possible "
                                  f"here; use mode=filesystem (memory: false)")
        if mode == "filesystem" and not tier.capabilities_of(sandbox_id).filesystem:
            raise ModeUnsupported(f"the {tier.name} tier cannot copy a filesystem; use mode=full")
        if mode not in ("full", "filesystem"):
            raise ModeUnsupported(f"invalid mode {mode!r}: expected full or filesystem")
        return mode

    async def export(self, rec: SandboxRecord, dest_dir: Path) -> int:
        """The source's layer into `dest_dir/disk.img` while it keeps running; bytes on disk."""
        dest_dir.mkdir(parents=True, mode=0o700, exist_ok=True)
        try:
            return await self.parts.tier.export_layer(rec.sandbox_id, Path(rec.workdir), dest_dir / LAYER,
                                                      frozen=rec.state == SandboxState.PAUSED.value)
        except TierError as exc:
            raise TierFailed(f"copying the filesystem of {rec.sandbox_id} failed: {exc}") from None

    async def export_memory(self, rec: SandboxRecord, dest_dir: Path) -> int:
        """The source's memory image, writable layer and boot configuration into `dest_dir`
        (which must not exist yet); the source is restored in place and keeps running.
        Bytes on disk."""
        parts = self.parts
        ckpt = memory_checkpoints(parts.tier, rec.sandbox_id)
        if ckpt is None:
            raise ModeUnsupported(f"the {parts.tier.name} tier cannot save memory; use mode=filesystem")
        if parts.store.volumes.mounts_of(rec.sandbox_id):
            raise ModeUnsupported(f"sandbox {rec.sandbox_id} mounts volumes, which a memory copy cannot "
                                  "mount yet; use mode=filesystem")
        config = boot.load_config(Path(rec.workdir))
        try:
            info = await ckpt.checkpoint(rec.sandbox_id, Path(rec.workdir), dest_dir, leave_running=True,
                                         with_disk=True)
        except TierError as exc:
            raise TierFailed(f"saving the memory of {rec.sandbox_id} failed: {exc}") from None
        finally:
            # The source runs again under a new host process (or not at all, if it failed).
            handle = await parts.tier.adopt(rec.sandbox_id, Path(rec.workdir))
            if handle is not None:
                parts.handles[rec.sandbox_id] = handle
            await parts.clients.drop(rec.sandbox_id)   # its relayed connections were closed
        boot.save_config(dest_dir, config)
        return int(info.image_bytes)

    async def take(self, rec: SandboxRecord, name: str | None, mode: str | None) -> Snapshot:
        resolved = self.resolve_mode(mode, "snapshot", rec.sandbox_id)
        if resolved == "full" and rec.state != SandboxState.RUNNING.value:
            raise ModeUnsupported(f"sandbox {rec.sandbox_id} is paused; resume it to take a full snapshot")
        if rec.state == SandboxState.PAUSED.value and not (Path(rec.workdir) / LAYER).exists():
            raise ModeUnsupported(f"sandbox {rec.sandbox_id} is paused; resume it to snapshot it")
        sid = SNAPSHOT_PREFIX + secrets.token_hex(10)
        self.root.mkdir(parents=True, mode=0o700, exist_ok=True)
        tmp = self.root / f".{sid}.tmp"
        try:
            if resolved == "full":
                size = await self.export_memory(rec, tmp)
            elif rec.state == SandboxState.PAUSED.value and not self.parts.tier.is_alive(rec.sandbox_id):
                tmp.mkdir(mode=0o700)
                await _sparse_copy(Path(rec.workdir) / LAYER, tmp / LAYER)   # a stopped layer is at rest
                size = (tmp / LAYER).stat().st_blocks * 512
            else:
                size = await self.export(rec, tmp)
            snap = Snapshot(
                snapshot_id=sid, names=[name] if name else [], sandbox_id=rec.sandbox_id, template=rec.template_id,
                mode=resolved, size_bytes=size, created_at=now().isoformat(), cpu_count=rec.cpu_count,
                memory_mb=rec.memory_mb, disk_mb=rec.disk_mb, pids_max=rec.pids_max,
                metadata=dict(rec.metadata_ or {}), isolation=rec.tier or "",
            )
            (tmp / META).write_text(json.dumps(asdict(snap)))
            os.replace(tmp, self.root / sid)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return snap

    def get(self, snapshot_id: str) -> Snapshot:
        if not is_snapshot_id(snapshot_id):
            raise SnapshotNotFound(snapshot_id)
        try:
            raw = json.loads((self.root / snapshot_id / META).read_text())
            return Snapshot(**raw)
        except (OSError, ValueError, TypeError):
            raise SnapshotNotFound(snapshot_id) from None

    def find(self, id_or_name: str) -> Snapshot | None:
        if is_snapshot_id(id_or_name):
            try:
                return self.get(id_or_name)
            except SnapshotNotFound:
                return None
        return next((s for s in self.list() if id_or_name in s.names), None)

    def list(self, sandbox_id: str | None = None, name: str | None = None) -> list[Snapshot]:
        out = []
        if not self.root.is_dir():
            return out
        for d in self.root.iterdir():
            if is_snapshot_id(d.name):
                try:
                    snap = self.get(d.name)
                except SnapshotNotFound:
                    continue
                if (sandbox_id is None or snap.sandbox_id == sandbox_id) and (name is None or name in snap.names or name == snap.snapshot_id):
                    out.append(snap)
        return sorted(out, key=lambda s: (s.created_at, s.snapshot_id))

    def delete(self, snapshot_id: str) -> bool:
        if not is_snapshot_id(snapshot_id) or not (self.root / snapshot_id).is_dir():
            return False
        trash = self.root / f".{snapshot_id}.deleting"
        os.replace(self.root / snapshot_id, trash)   # gone for list/create at once
        shutil.rmtree(trash, ignore_errors=True)
        return True

    def layer(self, snap: Snapshot) -> Path:
        return self.root / snap.snapshot_id / LAYER

    def plan(self, starter: "Starter", request: CreateRequest) -> "StartPlan | None":
        """A start plan that boots from a snapshot when the request's template names one."""
        snap = self.find(request.template)
        if snap is None:
            return None
        template_request = replace(request, template=snap.template)
        if snap.mode == "full":   # memory restores only on the tier that saved it
            template_request = replace(template_request, isolation=snap.isolation or None)
        base = starter.plan(template_request)
        if snap.mode == "full":
            return replace(base, limits=snap.limits, memory=self.root / snap.snapshot_id,
                           request=replace(template_request, template=snap.snapshot_id))
        return replace(base, limits=snap.limits, layer=self.layer(snap),
                       request=replace(template_request, template=snap.snapshot_id))


async def _sparse_copy(src: Path, dst: Path) -> None:
    def copy() -> None:
        with open(src, "rb") as f, open(dst, "xb") as g:
            size = os.fstat(f.fileno()).st_size
            g.truncate(size)
            pos = 0
            while pos < size:
                try:
                    data = os.lseek(f.fileno(), pos, os.SEEK_DATA)
                except OSError:
                    break
                hole = os.lseek(f.fileno(), data, os.SEEK_HOLE)
                off = data
                while off < hole:
                    n = os.copy_file_range(f.fileno(), g.fileno(), hole - off, off, off)
                    if n <= 0:
                        raise OSError("short copy")
                    off += n
                pos = hole
        os.chmod(dst, 0o600)
    await asyncio.to_thread(copy)

