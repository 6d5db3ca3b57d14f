"""The gVisor tier: every sandbox behind its own user-space kernel (runsc's Sentry).

Untrusted code never makes a system call to the host kernel: gVisor's Sentry implements Linux
in a sandboxed Go process (ptrace or systrap platform), and files are served by a separate gofer
process. The sandbox policy is the namespace tier's, rendered to an OCI bundle
(:mod:`corral.runtime.oci`) and applied inside the Sentry (``--oci-seccomp``); limits are the
bundle's cgroups; the root filesystem is the template (read-only) under a writable layer on a
per-sandbox ext4 image (:mod:`corral.runtime.gvisor.launcher`); the network is an empty
namespace unless egress is attached. envd runs inside, on the server's Python mounted read-only,
and is reached over host unix sockets in ``<workdir>/run`` (:mod:`corral.runtime.gvisor.relay`).

Memory checkpoints (``runsc checkpoint``/``restore``) give full-mode pause, snapshots and forks
(:class:`corral.runtime.checkpoint.Checkpointing`, in :mod:`corral.runtime.gvisor.checkpoints`);
``freeze``/``thaw`` are ``runsc pause``/``resume`` (memory stays resident). Host process
plumbing (the launcher's command line, pid files, log tails) is :mod:`corral.runtime.gvisor.procs`;
the run directory's tmpfs is :mod:`corral.runtime.gvisor.rundir`.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from corral.runtime.base import (
    Payload, ResourceUsage, SandboxHandle, SandboxSpec, Tier, TierError, VolumeBind, socket_accepts,
)
from corral.runtime.checkpoint import Checkpointing
from corral.runtime.gvisor import bundle as bundles
from corral.runtime.gvisor import layout as L
from corral.runtime.gvisor import rundir
from corral.runtime.gvisor.checkpoints import GVisorCheckpoints
from corral.runtime.gvisor.procs import (
    PID_FILE, SPARE_ARG, frame_spec, launcher_argv, launcher_env, pid_exists, point_bundle_at, read_line,
    read_pid, tail,
)
from corral.runtime.gvisor.cgroups import SandboxCgroups
from corral.runtime.gvisor.runsc import CLEAN_ENV, Runsc, find_runsc, probe
from corral.runtime.namespace import disk
from corral.wire.constants import ENVD_PAYLOAD, is_sandbox_id

DEFAULT_STATE_DIR = Path("/var/lib/corral/runtime")
BeforeBoot = Callable[[str], Awaitable[None]]
MAX_SOCKET_PATH = 100
READY_TIMEOUT_S = 60.0


class GVisorTier(GVisorCheckpoints, Tier, Checkpointing):
    name = "gvisor"

    def __init__(self, state_dir: Path = DEFAULT_STATE_DIR, cgroup_group: str = "corral-gvisor",
                 runsc_root: Path | None = None, runsc_path: str | None = None,
                 payload: Payload | None = None) -> None:
        """``runsc_root``: runsc's state directory (default ``<state_dir>/runsc-<group>``); keep it
        under the server's data dir so a restarted server finds its sandboxes. ``payload``: what
        the sandbox's init runs (default envd, by import path; its preloads are not needed here,
        the code stays mounted)."""
        self.payload = payload or Payload(*ENVD_PAYLOAD)
        self.state_dir = state_dir
        self.cgroup_group = cgroup_group
        self.cgroups = SandboxCgroups(cgroup_group)
        self._runsc_root = runsc_root or state_dir / f"runsc-{cgroup_group}"
        self._runsc_path = runsc_path
        self._runsc: Runsc | None = None
        self._pids: dict[str, int] = {}          # sandbox id -> host pid of its sandbox process
        self._pidfds: dict[str, int] = {}
        self._dirfds: dict[str, int] = {}
        self._lock = asyncio.Lock()
        self._janitor: subprocess.Popen[bytes] | None = None
        # A launcher started ahead of time (interpreter up, imports done), waiting on its stdin
        # for the next sandbox's spec: its start-up is off a create's and a resume's path.
        self._spare: asyncio.subprocess.Process | None = None
        self._spare_loop: asyncio.AbstractEventLoop | None = None
        self._spawning: asyncio.Task[None] | None = None
        self._closed = False

    # --- machinery -----------------------------------------------------------------------

    @property
    def runsc(self) -> Runsc:
        if self._runsc is None:
            info = probe(find_runsc(self._runsc_path))
            self._runsc_root.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._runsc = Runsc(self._runsc_root, info)
        return self._runsc

    async def start(self) -> None:
        async with self._lock:
            if os.geteuid() != 0:
                raise TierError("the gVisor tier needs root (runsc sets up namespaces and cgroups)")
            await asyncio.to_thread(lambda: self.runsc)
            if self._janitor is None:
                self._janitor = await asyncio.to_thread(self._start_janitor)
            self._closed = False
            self._spawn_spare_soon()

    def _start_janitor(self) -> subprocess.Popen[bytes]:
        """The process that cleans up after sandboxes that end once this server is gone
        (:mod:`corral.runtime.gvisor.janitor`); it waits on a pipe only we hold."""
        spec = json.dumps({"group": self.cgroup_group, "root": str(self._runsc_root)})
        return subprocess.Popen(
            [sys.executable, "-I", "-m", "corral.runtime.gvisor.janitor", spec],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=launcher_env(), cwd="/", close_fds=True)

    def _spawn_spare_soon(self) -> None:
        if self._closed or self._spare is not None or (self._spawning and not self._spawning.done()):
            return
        self._spawning = asyncio.get_running_loop().create_task(self._spawn_spare(), name="corral-gvisor-spare")

    async def _spawn_spare(self) -> None:
        proc = await asyncio.create_subprocess_exec(
            *launcher_argv(), SPARE_ARG, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL, env=launcher_env(), cwd="/")
        if self._closed:
            await _dismiss(proc)
            return
        self._spare, self._spare_loop = proc, asyncio.get_running_loop()

    async def _take_spare(self) -> asyncio.subprocess.Process | None:
        """The waiting launcher, if there is a live one of this event loop; a new one is started."""
        proc, self._spare = self._spare, None
        if proc is not None and (proc.returncode is not None or self._spare_loop is not asyncio.get_running_loop()):
            if self._spare_loop is asyncio.get_running_loop():
                await _dismiss(proc)
            proc = None
        self._spawn_spare_soon()
        return proc

    async def close(self) -> None:
        """Forget the sandboxes (they keep running); the janitor takes over their clean-up."""
        self._closed = True
        if self._spawning is not None:
            await asyncio.gather(self._spawning, return_exceptions=True)
        spare, self._spare = self._spare, None
        if spare is not None and self._spare_loop is asyncio.get_running_loop():
            await _dismiss(spare)
        if self._janitor is not None:
            assert self._janitor.stdin is not None
            self._janitor.stdin.close()
            self._janitor = None   # (it is in its own session; it exits when they have ended)
        loop = asyncio.get_running_loop()
        for fd in self._pidfds.values():
            try:
                loop.remove_reader(fd)
            except (ValueError, RuntimeError):
                pass
            os.close(fd)
        self._pidfds.clear()
        for fd in self._dirfds.values():
            os.close(fd)
        self._dirfds.clear()
        self._pids.clear()
        self.cgroups.remove_group_if_empty()

    def _watch(self, sandbox_id: str, pid: int) -> None:
        self._unwatch(sandbox_id)
        self._pids[sandbox_id] = pid
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            self._pids.pop(sandbox_id, None)
            return
        self._pidfds[sandbox_id] = fd
        asyncio.get_running_loop().add_reader(fd, self._exited, sandbox_id)

    def _exited(self, sandbox_id: str) -> None:
        self._pids.pop(sandbox_id, None)
        fd = self._pidfds.pop(sandbox_id, None)
        if fd is not None:
            asyncio.get_running_loop().remove_reader(fd)
            os.close(fd)

    def _unwatch(self, sandbox_id: str) -> None:
        self._exited(sandbox_id)

    def is_alive(self, sandbox_id: str) -> bool:
        return sandbox_id in self._pids

    def _socket_path(self, sandbox_id: str, workdir: Path, name: str = L.ENVD_SOCKET) -> Path:
        """A connectable name for a host socket in ``run/``; long paths go through an O_PATH fd."""
        path = L.Layout(workdir).socket(name)
        if len(os.fsencode(path)) < MAX_SOCKET_PATH:
            return path
        fd = self._dirfds.get(sandbox_id)
        if fd is None:
            fd = os.open(L.Layout(workdir).run, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            self._dirfds[sandbox_id] = fd
        return Path(f"/proc/self/fd/{fd}/{name}")

    # --- lifecycle -----------------------------------------------------------------------

    async def create(self, spec: SandboxSpec, *,
                     before_boot: BeforeBoot | None = None) -> SandboxHandle:
        """``before_boot(netns_path)``: give the sandbox a network. gVisor's network stack takes
        the interfaces its namespace has when it boots, so egress is attached here, into a fresh
        namespace made for the sandbox, before runsc starts (corral.network's attach with
        ``netns_path``). Without it the sandbox has loopback only."""
        await self.start()
        if not is_sandbox_id(spec.sandbox_id):
            raise TierError(f"invalid sandbox id {spec.sandbox_id!r}")
        if not Path(spec.rootfs).is_dir():
            raise TierError(f"template root filesystem {spec.rootfs} does not exist")
        if self.runsc.state_files(spec.sandbox_id) or self.cgroups.exists(spec.sandbox_id):
            raise TierError(f"sandbox {spec.sandbox_id} already exists")
        lay = L.Layout(Path(spec.workdir))
        try:
            await asyncio.to_thread(self._prepare, spec, lay, before_boot is not None)
            await self._launch(spec.sandbox_id, lay, spec.rootfs, "run", spec.payload_config,
                               before_boot=before_boot)
            return await self._ready(spec.sandbox_id, lay)
        except BaseException:
            await self.destroy(spec.sandbox_id, lay.workdir)
            raise

    def _prepare(self, spec: SandboxSpec, lay: L.Layout, networked: bool = False) -> None:
        lay.workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(lay.workdir, 0o700)
        for d in (lay.bundle, lay.run):
            d.mkdir(mode=0o700, exist_ok=True)
        golden = disk.golden_image(self.state_dir / "golden", spec.limits.disk_mb)
        disk.sparse_copy(golden, lay.disk)
        self._write_bundle(spec.sandbox_id, lay, spec.rootfs, spec.limits, networked, spec.volumes)

    def _write_bundle(self, sandbox_id: str, lay: L.Layout, rootfs: Path | str, limits,  # type: ignore[no-untyped-def]
                      networked: bool = False, volumes: tuple[VolumeBind, ...] = ()) -> None:
        # A networked sandbox joins the launcher's namespace, whose path is known only once the
        # launcher runs (see _point_bundle_at).
        config = bundles.render(sandbox_id, lay, self.cgroups.path_for(sandbox_id), limits,
                                self.payload.entry_point, errno_via_trace=True,
                                netns_path="/proc/0/ns/net" if networked else None, volumes=volumes)
        config["annotations"]["dev.corral.rootfs"] = str(rootfs)
        tmp = lay.config.with_suffix(".tmp")
        tmp.write_text(json.dumps(config, indent=1))
        os.replace(tmp, lay.config)

    async def _launch(self, sandbox_id: str, lay: L.Layout, rootfs: Path | str, verb: str,
                      handoff: bytes | None, image_dir: Path | None = None, *,
                      before_boot: BeforeBoot | None = None) -> None:
        await asyncio.to_thread(self.cgroups.prepare_cpuset)
        await asyncio.to_thread(rundir.mount, lay.run, sandbox_id)
        pid_file = lay.workdir / PID_FILE
        pid_file.unlink(missing_ok=True)
        args = [verb, "--detach", f"--bundle={lay.bundle}", f"--pid-file={pid_file}"]
        if image_dir is not None:
            args.append(f"--image-path={image_dir}")
        network = "sandbox" if before_boot is not None else "none"
        argv = self.runsc.argv(*args, sandbox_id, network=network)
        config = json.loads(lay.config.read_text())
        spec: dict[str, object] = {"workdir": str(lay.workdir), "rootfs": str(rootfs),
                                   "argv": argv, "env": CLEAN_ENV, "binds": bundles.binds_of(config),
                                   "volumes": bundles.volumes_of(config)}
        fds: list[int] = []
        if before_boot is not None:
            to_tier_r, to_tier_w = os.pipe()
            to_launcher_r, to_launcher_w = os.pipe()
            os.set_inheritable(to_tier_w, True)
            os.set_inheritable(to_launcher_r, True)
            fds = [to_tier_w, to_launcher_r]
            spec["sync"] = [to_tier_w, to_launcher_r]
        proc = await self._take_spare() if before_boot is None else None
        if proc is not None:   # (a networked start passes its hand-shake pipes at spawn)
            assert proc.stdin is not None
            spec["log"] = str(lay.log)
            proc.stdin.write(frame_spec(spec))
        else:
            log = os.open(lay.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
            try:
                proc = await asyncio.create_subprocess_exec(
                    *launcher_argv(), json.dumps(spec),
                    stdin=asyncio.subprocess.PIPE, stdout=log, stderr=log, env=launcher_env(),
                    cwd="/", pass_fds=fds)
            finally:
                os.close(log)
                for fd in fds:
                    os.close(fd)
        if before_boot is not None:
            try:
                line = await asyncio.to_thread(read_line, to_tier_r)
                if not line.strip().isdigit():
                    raise TierError(f"sandbox {sandbox_id} failed to start: {tail(lay.log)}")
                holder = int(line)
                netns_path = f"/proc/{holder}/ns/net"
                await asyncio.to_thread(point_bundle_at, lay, netns_path)
                await before_boot(netns_path)
                os.write(to_launcher_w, b"g")
            except BaseException:
                proc.kill()
                await proc.wait()
                raise
            finally:
                os.close(to_tier_r)
                os.close(to_launcher_w)
        assert proc.stdin is not None
        if handoff is not None:
            proc.stdin.write(handoff)
        try:
            await proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass
        proc.stdin.close()
        try:
            rc = await asyncio.wait_for(proc.wait(), READY_TIMEOUT_S)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise TierError(f"runsc {verb} of {sandbox_id} timed out") from None
        if before_boot is not None:  # runsc has joined it; the holder dies with runsc anyway
            try:
                os.kill(holder, 9)
            except ProcessLookupError:
                pass
        if rc != 0:
            raise TierError(f"sandbox {sandbox_id} failed to start: {tail(lay.log)}")
        memory = json.loads(lay.config.read_text())["linux"]["resources"]["memory"]["limit"]
        await asyncio.to_thread(self.cgroups.allow_sentry_headroom, sandbox_id, int(memory))

    async def _ready(self, sandbox_id: str, lay: L.Layout) -> SandboxHandle:
        # runsc wrote the sandbox's pid (--pid-file) once it ran: no `runsc state` (a Go program
        # started for one answer, 20-90 ms here) on the way to a create's or a resume's first command.
        pid = read_pid(lay.workdir / PID_FILE)
        if not pid or not pid_exists(pid):
            state = await self.runsc.state(sandbox_id)
            if not state or state.get("status") != "running":
                raise TierError(f"sandbox {sandbox_id} is not running after start: {tail(lay.log)}")
            pid = int(state.get("pid") or 0)
        sock = self._socket_path(sandbox_id, lay.workdir)
        deadline = time.monotonic() + READY_TIMEOUT_S
        delay = 0.002
        while True:
            try:
                _, writer = await asyncio.open_unix_connection(str(sock))
                writer.close()
                await writer.wait_closed()
                break
            except OSError:
                pass
            if pid and not pid_exists(pid):
                raise TierError(f"sandbox {sandbox_id} exited during start: {tail(lay.log)}")
            if time.monotonic() > deadline:
                raise TierError(f"envd of {sandbox_id} did not start: {tail(lay.log)}")
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.05)
        if pid:
            self._watch(sandbox_id, pid)
        return SandboxHandle(sandbox_id, self.name, sock, pid)

    async def destroy(self, sandbox_id: str, workdir: Path) -> None:
        self._unwatch(sandbox_id)
        dirfd = self._dirfds.pop(sandbox_id, None)
        if dirfd is not None:
            os.close(dirfd)
        await asyncio.to_thread(self._destroy_sync, sandbox_id, Path(workdir))

    def _forget(self, sandbox_id: str) -> None:
        """End a sandbox's processes and drop runsc's record of it, without ``runsc delete``
        (which polls for a second and more): every runsc process of a sandbox (Sentry, gofer,
        ptrace stubs) lives in its cgroups, and runsc's record is two files in ``--root`` and
        its control socket."""
        self.cgroups.destroy(sandbox_id)
        for f in self.runsc.record(sandbox_id):
            f.unlink(missing_ok=True)

    def _destroy_sync(self, sandbox_id: str, workdir: Path) -> None:
        self._forget(sandbox_id)
        image = L.Layout(workdir).disk
        deadline = time.monotonic() + 10
        delay = 0.0005
        while disk.loop_devices_backed_by(image):
            if time.monotonic() > deadline:
                raise TierError(f"loop device of {sandbox_id} did not detach")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        rundir.unmount(sandbox_id)
        shutil.rmtree(workdir, ignore_errors=True)
        if workdir.exists():
            raise TierError(f"could not remove {workdir}")

    async def adopt(self, sandbox_id: str, workdir: Path) -> SandboxHandle | None:
        state = await self.runsc.state(sandbox_id)
        if not state or state.get("status") not in ("running", "paused"):
            return None
        pid = int(state.get("pid") or 0)
        if not pid or not pid_exists(pid):
            return None
        sock = self._socket_path(sandbox_id, Path(workdir))
        if state.get("status") == "running" and not await socket_accepts(sock):
            return None
        self._watch(sandbox_id, pid)
        return SandboxHandle(sandbox_id, self.name, sock, pid)

    async def leftovers(self) -> list[str]:
        ids = set(self.runsc.list_ids()) | set(await asyncio.to_thread(self.cgroups.list_ids))
        return sorted(ids)

    async def freeze(self, sandbox_id: str) -> None:
        await self.runsc.call("pause", sandbox_id)

    async def thaw(self, sandbox_id: str) -> None:
        await self.runsc.call("resume", sandbox_id)

    async def usage(self, sandbox_id: str, workdir: Path) -> ResourceUsage:
        return await asyncio.to_thread(self._usage_sync, sandbox_id, Path(workdir))

    def _usage_sync(self, sandbox_id: str, workdir: Path) -> ResourceUsage:
        if not self.cgroups.exists(sandbox_id):
            raise TierError(f"sandbox {sandbox_id} has no cgroup")
        mem, cache, limit = self.cgroups.memory_bytes(sandbox_id)
        total = used = 0
        try:
            st = os.statvfs(L.Layout(workdir).disk)
            total = os.stat(L.Layout(workdir).disk).st_size
            used = os.stat(L.Layout(workdir).disk).st_blocks * 512
            del st
        except OSError:
            pass
        cpu_count = 0
        try:
            cfg = json.loads(L.Layout(workdir).config.read_text())
            cpu = cfg["linux"]["resources"]["cpu"]
            cpu_count = max(1, int(cpu["quota"]) // int(cpu["period"]))
        except (OSError, ValueError, KeyError):
            pass
        return ResourceUsage(cpu_usage_usec=self.cgroups.cpu_usage_usec(sandbox_id),
                             cpu_count=cpu_count, memory_bytes=mem, memory_cache_bytes=cache,
                             memory_limit_bytes=limit, disk_used_bytes=used,
                             disk_total_bytes=total)


async def _dismiss(proc: asyncio.subprocess.Process) -> None:
    """End a waiting launcher: end-of-file on its stdin, before it has read a spec, exits it."""
    if proc.stdin is not None:
        proc.stdin.close()
    try:
        await asyncio.wait_for(proc.wait(), 10)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
