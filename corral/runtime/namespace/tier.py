"""The namespace tier: Linux namespaces + cgroups + seccomp, the default isolation tier."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import stat
import time
from pathlib import Path

from corral.runtime.base import (
    Capabilities, Payload, ResourceUsage, SandboxHandle, SandboxSpec, Tier, TierError, socket_accepts,
)
from corral.runtime.namespace import disk
from corral.runtime.namespace.cgroups import CgroupManager, detect
from corral.runtime.namespace.lxcfs import Lxcfs
from corral.runtime.namespace.request import (
    CONFIG_FILE, SOCKET_FILE, RequestError, SpawnRequest,
)
from corral.runtime.namespace.spawner_client import SpawnerClient
from corral.wire.constants import ENVD_PAYLOAD

log = logging.getLogger(__name__)

DEFAULT_STATE_DIR = Path("/var/lib/corral/runtime")


MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes with its NUL; keep a margin


def find_init_pid(pids: list[int]) -> int:
    """The host pid of the process that is pid 1 in its own pid namespace, or 0."""
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("NSpid:"):
                        ns = line.split()[1:]
                        if len(ns) >= 2 and ns[-1] == "1":
                            return pid
                        break
        except OSError:
            continue
    return 0


def _write_private(path: Path, data: bytes) -> None:
    """A 0600 file only root on the host can read; the sandbox's init reads and deletes it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


class NamespaceTier(Tier):
    name = "namespace"
    # Full-mode pause is the freezer (memory resident); CRIU does not work here (isolation.md).
    capabilities = Capabilities(freeze=True, memory_checkpoint=False, filesystem=True)  # type: ignore[assignment]

    def __init__(self, state_dir: Path = DEFAULT_STATE_DIR, cgroup_group: str = "corral",
                 init_argv: list[str] | None = None, cgroups: CgroupManager | None = None,
                 payload: Payload | None = None) -> None:
        """``payload`` is what every sandbox's init runs (default: the in-sandbox daemon, named by
        `corral.wire.constants.ENVD_PAYLOAD`; the tier only knows its import path). ``init_argv``
        instead execs a program as the sandbox's pid 1 (tests, debugging): it finds the listening
        socket in $CORRAL_LISTEN_FD and the payload configuration bytes on $CORRAL_CONFIG_FD."""
        self.state_dir = state_dir
        self.cgroup_group = cgroup_group
        self.init_argv = list(init_argv or [])
        self.payload = payload or Payload(*ENVD_PAYLOAD)
        self._cgroups = cgroups
        self._spawner = SpawnerClient(cgroup_group, self._on_exit, self.payload)
        self._lxcfs = Lxcfs(state_dir, name=f"lxcfs-{cgroup_group}")   # one per server: see lxcfs.py
        self._pid_to_id: dict[int, str] = {}
        self._init_pid: dict[str, int] = {}
        self._exited: dict[str, int | None] = {}   # sandbox id -> wait status (None: unknown)
        self._pidfds: dict[str, int] = {}
        self._dirfds: dict[str, int] = {}   # O_PATH fds of workdirs too deep for a socket path
        self._lock = asyncio.Lock()

    # --- machinery -----------------------------------------------------------------------

    @property
    def cgroups(self) -> CgroupManager:
        if self._cgroups is None:
            self._cgroups = detect(group=self.cgroup_group)
        return self._cgroups

    async def start(self) -> None:
        async with self._lock:
            if os.geteuid() != 0:
                raise TierError("the namespace tier needs root")
            _ = self.cgroups
            if not self._spawner.running:
                self._spawner.lxcfs_root = await asyncio.to_thread(self._ensure_lxcfs)
            await self._spawner.start()

    def _ensure_lxcfs(self) -> str:
        """Adopt or start the server's lxcfs (`lxcfs`); without it sandboxes see the host's /proc
        numbers, which is logged, not fatal."""
        try:
            return self._lxcfs.ensure() or ""
        except OSError as exc:
            log.warning("lxcfs unavailable, sandboxes see the host's /proc: %s", exc)
            return ""

    async def close(self) -> None:
        await self._spawner.close()
        for dirfd in self._dirfds.values():
            os.close(dirfd)
        self._dirfds.clear()
        if self._cgroups is not None:
            self._cgroups.remove_group_if_empty()
        loop = asyncio.get_running_loop()
        for fd in self._pidfds.values():
            try:
                loop.remove_reader(fd)
            except (ValueError, RuntimeError):
                pass
            os.close(fd)
        self._pidfds.clear()

    def _on_exit(self, pid: int, status: int | None) -> None:
        sandbox_id = self._pid_to_id.pop(pid, None)
        if sandbox_id is not None:
            self._exited[sandbox_id] = status
            fd = self._pidfds.pop(sandbox_id, None)
            if fd is not None:
                asyncio.get_running_loop().remove_reader(fd)
                os.close(fd)

    def _watch(self, sandbox_id: str, pid: int) -> None:
        """Notice the exit of an init that is not our spawner's child (adopted sandboxes)."""
        self._pid_to_id[pid] = sandbox_id
        self._init_pid[sandbox_id] = pid
        self._exited.pop(sandbox_id, None)
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            self._on_exit(pid, None)
            return
        self._pidfds[sandbox_id] = fd
        asyncio.get_running_loop().add_reader(fd, self._on_exit, pid, None)

    def exit_status(self, sandbox_id: str) -> int | None:
        """Wait status of a sandbox's init once it has exited (None while running or unknown)."""
        return self._exited.get(sandbox_id)

    def is_alive(self, sandbox_id: str) -> bool:
        return sandbox_id in self._init_pid and sandbox_id not in self._exited

    # --- lifecycle -----------------------------------------------------------------------

    async def create(self, spec: SandboxSpec) -> SandboxHandle:
        if not self._spawner.running:
            await self.start()
        workdir = Path(spec.workdir)
        req = SpawnRequest(
            sandbox_id=spec.sandbox_id, rootfs=str(spec.rootfs), workdir=str(workdir),
            uid_base=spec.uid_base, cpu_count=spec.limits.cpu_count,
            memory_mb=spec.limits.memory_mb, disk_mb=spec.limits.disk_mb,
            pids_max=spec.limits.pids_max, golden_image="/", init_argv=self.init_argv,
            volumes=[[str(v.image), v.target] for v in spec.volumes],
        )
        try:
            req.validate()
        except RequestError as exc:
            raise TierError(str(exc)) from exc
        if not Path(spec.rootfs).is_dir():
            raise TierError(f"template root filesystem {spec.rootfs} does not exist")
        golden = self.state_dir / "golden" / f"ext4-{spec.limits.disk_mb}m.img"
        if spec.layer is not None:
            # The spawned child copies `golden` to workdir/disk.img, or boots from it in place
            # when it already is that file (a filesystem-mode resume).
            golden = Path(spec.layer).absolute()
            if not golden.is_file():
                raise TierError(f"the writable layer {spec.layer} does not exist")
        elif not golden.exists():
            golden = await asyncio.to_thread(disk.golden_image, self.state_dir / "golden",
                                             spec.limits.disk_mb)
        if await asyncio.to_thread(self.cgroups.exists, spec.sandbox_id):
            raise TierError(f"sandbox {spec.sandbox_id} already exists")
        workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(workdir, 0o700)
        _write_private(workdir / CONFIG_FILE, spec.payload_config)
        msg = {**req.to_json(), "golden_image": str(golden)}
        try:
            reply = await self._spawner.request(msg)
        except BaseException:
            await self.destroy(spec.sandbox_id, workdir)
            raise
        if not reply.get("ok"):
            await self.destroy(spec.sandbox_id, workdir)
            raise TierError(f"sandbox {spec.sandbox_id} failed to start: {reply.get('error')}")
        pid = int(reply["pid"])
        self._pid_to_id[pid] = spec.sandbox_id
        self._init_pid[spec.sandbox_id] = pid
        self._exited.pop(spec.sandbox_id, None)
        return SandboxHandle(spec.sandbox_id, self.name, self._socket_path(spec.sandbox_id, workdir), pid)

    def _socket_path(self, sandbox_id: str, workdir: Path) -> Path:
        """A connectable name for the sandbox's payload socket. AF_UNIX paths are limited to 107
        bytes, so under a deep data dir we connect through /proc/self/fd/<dir fd>/ instead."""
        path = workdir / SOCKET_FILE
        if len(os.fsencode(path)) < MAX_SOCKET_PATH:
            return path
        fd = self._dirfds.get(sandbox_id)
        if fd is None:
            fd = os.open(workdir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            self._dirfds[sandbox_id] = fd
        return Path(f"/proc/self/fd/{fd}/{SOCKET_FILE}")

    async def destroy(self, sandbox_id: str, workdir: Path) -> None:
        dirfd = self._dirfds.pop(sandbox_id, None)
        if dirfd is not None:
            os.close(dirfd)
        pid = self._init_pid.pop(sandbox_id, 0)
        fd = self._pidfds.pop(sandbox_id, None)
        if fd is not None:
            asyncio.get_running_loop().remove_reader(fd)
            os.close(fd)
        try:
            await asyncio.to_thread(self._destroy_sync, sandbox_id, Path(workdir))
        finally:
            if pid:
                self._pid_to_id.pop(pid, None)
            self._exited.pop(sandbox_id, None)

    async def stop(self, sandbox_id: str, workdir: Path) -> None:
        """Filesystem-mode pause: every process killed, cgroups removed, the loop device detached
        (the kernel unmounts the layer cleanly with the last process), disk.img kept."""
        dirfd = self._dirfds.pop(sandbox_id, None)
        if dirfd is not None:
            os.close(dirfd)
        pid = self._init_pid.pop(sandbox_id, 0)
        fd = self._pidfds.pop(sandbox_id, None)
        if fd is not None:
            asyncio.get_running_loop().remove_reader(fd)
            os.close(fd)
        try:
            await asyncio.to_thread(self._destroy_sync, sandbox_id, Path(workdir), True)
        finally:
            if pid:
                self._pid_to_id.pop(pid, None)
            self._exited.pop(sandbox_id, None)

    async def export_layer(self, sandbox_id: str, workdir: Path, dest: Path, *, frozen: bool = False) -> int:
        return await asyncio.to_thread(self._export_sync, sandbox_id, Path(workdir), Path(dest), frozen)

    def _export_sync(self, sandbox_id: str, workdir: Path, dest: Path, was_frozen: bool) -> int:
        """Freeze, flush, copy, thaw. The overlay is mounted `volatile` (its syncfs is a no-op),
        so the flush is sync(2), which writes back every superblock, the sandbox's ext4 layer
        among them, whatever mount namespace holds it."""
        if not self.cgroups.exists(sandbox_id):
            raise TierError(f"sandbox {sandbox_id} is not running")
        self.cgroups.set_frozen(sandbox_id, True)
        try:
            os.sync()
            disk.sparse_copy(workdir / disk.IMAGE_NAME, dest)
        finally:
            if not was_frozen:
                self.cgroups.set_frozen(sandbox_id, False)
        return os.stat(dest).st_blocks * 512

    def _destroy_sync(self, sandbox_id: str, workdir: Path, keep_layer: bool = False) -> None:
        self.cgroups.destroy(sandbox_id)
        # The loop device detaches itself once the sandbox's mount namespace is gone, which
        # the kernel finishes shortly after the last process is reaped.
        image = workdir / disk.IMAGE_NAME
        deadline = time.monotonic() + 10
        delay = 0.0005
        while disk.loop_devices_backed_by(image):
            if time.monotonic() > deadline:
                raise TierError(f"loop device of {sandbox_id} did not detach")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        if keep_layer:
            # Sockets and a stale hand-off go; the layer and the caller's own files stay.
            (workdir / CONFIG_FILE).unlink(missing_ok=True)
            for entry in os.scandir(workdir):
                if stat.S_ISSOCK(entry.stat(follow_symlinks=False).st_mode):
                    os.unlink(entry.path)
            return
        shutil.rmtree(workdir, ignore_errors=True)
        if workdir.exists():
            raise TierError(f"could not remove {workdir}")

    async def adopt(self, sandbox_id: str, workdir: Path) -> SandboxHandle | None:
        if not self.cgroups.exists(sandbox_id):
            return None
        pid = find_init_pid(self.cgroups.pids(sandbox_id))
        if not pid:
            return None
        sock = self._socket_path(sandbox_id, Path(workdir))
        if not await socket_accepts(sock):
            return None
        self._watch(sandbox_id, pid)
        return SandboxHandle(sandbox_id, self.name, sock, pid)

    async def leftovers(self) -> list[str]:
        return await asyncio.to_thread(self.cgroups.list_ids)

    async def freeze(self, sandbox_id: str) -> None:
        await asyncio.to_thread(self.cgroups.set_frozen, sandbox_id, True)

    async def thaw(self, sandbox_id: str) -> None:
        await asyncio.to_thread(self.cgroups.set_frozen, sandbox_id, False)

    async def usage(self, sandbox_id: str, workdir: Path) -> ResourceUsage:
        return await asyncio.to_thread(self._usage_sync, sandbox_id)

    def _usage_sync(self, sandbox_id: str) -> ResourceUsage:
        if not self.cgroups.exists(sandbox_id):
            raise TierError(f"sandbox {sandbox_id} has no cgroup")
        stats = self.cgroups.stats(sandbox_id)
        pid = self._init_pid.get(sandbox_id) or find_init_pid(self.cgroups.pids(sandbox_id))
        used = total = 0
        if pid:
            try:
                st = os.statvfs(f"/proc/{pid}/root/")
                total = st.f_blocks * st.f_frsize
                used = (st.f_blocks - st.f_bfree) * st.f_frsize
            except OSError:
                pass
        cpu_count = 0
        try:
            cpu_count = int(self._cpu_count(sandbox_id))
        except (OSError, ValueError):
            pass
        return ResourceUsage(
            cpu_usage_usec=stats.cpu_usage_usec, cpu_count=cpu_count,
            memory_bytes=stats.memory_bytes, memory_cache_bytes=stats.memory_cache_bytes,
            memory_limit_bytes=stats.memory_limit_bytes, disk_used_bytes=used,
            disk_total_bytes=total,
        )

    def _cpu_count(self, sandbox_id: str) -> float:
        cg = self.cgroups
        root = cg.root
        if cg.version == 2:
            quota, period = (root / cg.group / sandbox_id / "cpu.max").read_text().split()
        else:
            d = root / "cpu" / cg.group / sandbox_id
            quota = (d / "cpu.cfs_quota_us").read_text().strip()
            period = (d / "cpu.cfs_period_us").read_text().strip()
        if quota in ("max", "-1"):
            return os.cpu_count() or 1
        return int(quota) / int(period)

