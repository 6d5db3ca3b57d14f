"""The contract between the server and an isolation tier.

The server decides *what* a sandbox is (its id, template, limits, and the payload its init runs
with the opaque configuration bytes that payload reads); a tier decides *how* it is isolated. A
tier never looks inside the payload or its bytes: it does not know what envd is. Everything a tier needs to find a sandbox again
after a server restart is derived from the sandbox id and the paths in the spec, so nothing is
known only in server memory.
"""

from __future__ import annotations

import abc
import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from corral.errors import CorralError


class TierError(CorralError, RuntimeError):
    """A tier could not do what was asked; the message is safe to show to an API client."""

    status = 500


@dataclass(frozen=True)
class Limits:
    cpu_count: int = 2
    memory_mb: int = 1024
    disk_mb: int = 2048
    pids_max: int = 512


@dataclass(frozen=True)
class Payload:
    """What a sandbox's init runs once it is sandboxed, named by import path, never imported here.

    `entry_point` is "module:function"; the function is called in the sandbox's pid 1 as
    ``function(listener, config, ports_listener)`` with the two listening sockets the tier bound
    (see `corral.wire.constants`) and the sandbox's configuration bytes, and should not return
    until the sandbox is to stop. `preload` entries ("module" or "module:function", called with no
    arguments) run once in a tier's long-lived spawner before it forks any sandbox, because after
    the pivot into the template root the host's Python library is out of reach. `process_name`
    is the init's command line as a sandbox's processes see it.
    """

    entry_point: str
    preload: tuple[str, ...] = ()
    process_name: str = "init"


@dataclass(frozen=True)
class VolumeBind:
    """A volume to mount read-write into the sandbox: its ext4 image on the host and the
    (already checked, absolute, normalised) path inside the sandbox. Every sandbox that mounts
    the same image shares one filesystem with the others (see runtime/namespace/volumes.py)."""

    image: Path
    target: str


@dataclass(frozen=True)
class SandboxSpec:
    sandbox_id: str            # [a-z0-9]{20}; also the hostname inside
    template: str
    rootfs: Path               # template root filesystem: read-only lower layer, never written
    workdir: Path              # host-side directory owned by this sandbox; removed on destroy
    uid_base: int              # first host uid/gid of the 65536 reserved for this sandbox
    limits: Limits = field(default_factory=Limits)
    # The payload's configuration (for envd: `corral.wire.handoff.EnvdConfig.to_bytes()`). It may
    # hold secrets (the access token, env vars), so it travels through a 0600 file in workdir that
    # the sandbox's init reads and deletes, never through the long-lived spawner process.
    payload_config: bytes = field(default=b"", repr=False)
    # Boot from this writable layer instead of an empty one: a filesystem-mode resume passes the
    # sandbox's own layer (``workdir/disk.img``, used in place), a snapshot or a fork passes a
    # copy's (copied sparsely, reflinked where the filesystem can). None: an empty layer.
    layer: Path | None = None
    # Volumes mounted read-write into the sandbox, in this order.
    volumes: tuple[VolumeBind, ...] = ()


@dataclass(frozen=True)
class SandboxHandle:
    sandbox_id: str
    tier: str                  # "namespace" | "gvisor" | "microvm"
    envd_socket: Path          # unix socket (host path) the payload (envd) serves on
    init_pid: int              # host pid of the sandbox's init (the payload), 0 if not known


@dataclass(frozen=True)
class ResourceUsage:
    cpu_usage_usec: int        # cumulative CPU time of every process in the sandbox
    cpu_count: int
    memory_bytes: int          # current usage, page cache included
    memory_cache_bytes: int
    memory_limit_bytes: int
    disk_used_bytes: int
    disk_total_bytes: int


@dataclass(frozen=True)
class Capabilities:
    """What a tier can do to a sandbox it runs, so the lifecycle never guesses.

    ``freeze``: stop every process with its memory resident (the cgroup freezer: survives a
    server restart, not a host reboot). ``memory_checkpoint``: write memory to disk and restore
    it, in the same sandbox or as a new one (the tier then also implements
    ``corral.lifecycle.checkpoints.MemoryCheckpoints``). ``filesystem``: stop a sandbox keeping
    only its writable layer (`stop`), copy that layer out while it runs (`export_layer`), and
    boot from a layer (`SandboxSpec.layer`).
    """

    freeze: bool = True
    memory_checkpoint: bool = False
    filesystem: bool = False


class Tier(abc.ABC):
    """One isolation technology. Methods are coroutines; blocking work goes to threads."""

    name: str

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(memory_checkpoint=callable(getattr(self, "checkpoint", None)))

    def capabilities_of(self, sandbox_id: str) -> Capabilities:
        """What this tier can do to one sandbox (a set of tiers answers for the sandbox's own)."""
        return self.capabilities

    @abc.abstractmethod
    async def start(self) -> None:
        """Prepare host-side machinery (spawner process, cgroup parents). Idempotent."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop host-side machinery. Running sandboxes keep running (they are re-adopted)."""

    @abc.abstractmethod
    async def create(self, spec: SandboxSpec) -> SandboxHandle:
        """Start a sandbox; return once its payload's socket accepts connections."""

    @abc.abstractmethod
    async def destroy(self, sandbox_id: str, workdir: Path) -> None:
        """Kill every process, remove cgroups, devices and workdir. Safe to call twice."""

    @abc.abstractmethod
    async def adopt(self, sandbox_id: str, workdir: Path) -> SandboxHandle | None:
        """After a server restart: the handle of a still-healthy sandbox, or None."""

    @abc.abstractmethod
    async def leftovers(self) -> list[str]:
        """Ids of sandboxes this tier still has host resources for (cgroups, processes)."""

    @abc.abstractmethod
    async def freeze(self, sandbox_id: str) -> None: ...

    @abc.abstractmethod
    async def thaw(self, sandbox_id: str) -> None: ...

    @abc.abstractmethod
    async def usage(self, sandbox_id: str, workdir: Path) -> ResourceUsage: ...

    async def stop(self, sandbox_id: str, workdir: Path) -> None:
        """End every process and release every host resource except the writable layer
        (``workdir/disk.img``), which a later `create` with ``SandboxSpec.layer`` boots from."""
        raise TierError(f"the {self.name} tier cannot stop a sandbox and keep its filesystem")

    async def export_layer(self, sandbox_id: str, workdir: Path, dest: Path, *, frozen: bool = False) -> int:
        """Copy a running sandbox's writable layer, consistent on disk, to ``dest``; the sandbox
        keeps running (``frozen``: it is frozen already and stays so). Returns the bytes the copy
        occupies on disk."""
        raise TierError(f"the {self.name} tier cannot copy a sandbox's filesystem")

    def is_alive(self, sandbox_id: str) -> bool:
        """Cheap liveness check (used by the reaper); tiers may override."""
        return True


async def socket_accepts(path: Path, timeout: float = 2.0) -> bool:
    """Whether a unix socket accepts a connection within `timeout`: how a tier tells, after a
    server restart, that a sandbox's daemon still answers (the connection is closed at once)."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(path)), timeout)
    except (OSError, asyncio.TimeoutError):
        return False
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return True
