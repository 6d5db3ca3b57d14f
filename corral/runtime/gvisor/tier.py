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
(:class:`corral.runtime.checkpoint.Checkpointing`); ``freeze``/``thaw`` are ``runsc pause``/
``resume`` (memory stays resident).
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
from corral.runtime.checkpoint import CheckpointInfo, Checkpointing
from corral.runtime.gvisor import bundle as bundles
from corral.runtime.gvisor import layout as L
from corral.runtime.gvisor import rundir
from corral.runtime.gvisor.cgroups import SandboxCgroups
from corral.runtime.gvisor.runsc import CLEAN_ENV, Runsc, RunscError, find_runsc, probe
from corral.runtime.namespace import disk
from corral.wire.constants import ENVD_PAYLOAD, is_sandbox_id

DEFAULT_STATE_DIR = Path("/var/lib/corral/runtime")
BeforeBoot = Callable[[str], Awaitable[None]]
MAX_SOCKET_PATH = 100
READY_TIMEOUT_S = 60.0
PID_FILE = "sandbox.pid"   # runsc's --pid-file: the sandbox process's host pid


class GVisorTier(Tier, Checkpointing):
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

    def _start_janitor(self) -> subprocess.Popen[bytes]:
        """The process that cleans up after sandboxes that end once this server is gone
        (:mod:`corral.runtime.gvisor.janitor`); it waits on a pipe only we hold."""
        spec = json.dumps({"group": self.cgroup_group, "root": str(self._runsc_root)})
        return subprocess.Popen(
            [sys.executable, "-I", "-m", "corral.runtime.gvisor.janitor", spec],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=_launcher_env(), cwd="/", close_fds=True)

    async def close(self) -> None:
        """Forget the sandboxes (they keep running); the janitor takes over their clean-up."""
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
        log = os.open(lay.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        try:
            proc = await asyncio.create_subprocess_exec(
                *launcher_argv(), json.dumps(spec),
                stdin=asyncio.subprocess.PIPE, stdout=log, stderr=log, env=_launcher_env(),
                cwd="/", pass_fds=fds)
        finally:
            os.close(log)
            for fd in fds:
                os.close(fd)
        if before_boot is not None:
            try:
                line = await asyncio.to_thread(_read_line, to_tier_r)
                if not line.strip().isdigit():
                    raise TierError(f"sandbox {sandbox_id} failed to start: {_tail(lay.log)}")
                holder = int(line)
                netns_path = f"/proc/{holder}/ns/net"
                await asyncio.to_thread(_point_bundle_at, lay, netns_path)
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
            raise TierError(f"sandbox {sandbox_id} failed to start: {_tail(lay.log)}")
        memory = json.loads(lay.config.read_text())["linux"]["resources"]["memory"]["limit"]
        await asyncio.to_thread(self.cgroups.allow_sentry_headroom, sandbox_id, int(memory))

    async def _ready(self, sandbox_id: str, lay: L.Layout) -> SandboxHandle:
        # runsc wrote the sandbox's pid (--pid-file) once it ran: no `runsc state` (a Go program
        # started for one answer, 20-90 ms here) on the way to a create's or a resume's first command.
        pid = _read_pid(lay.workdir / PID_FILE)
        if not pid or not _pid_exists(pid):
            state = await self.runsc.state(sandbox_id)
            if not state or state.get("status") != "running":
                raise TierError(f"sandbox {sandbox_id} is not running after start: {_tail(lay.log)}")
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
            if pid and not _pid_exists(pid):
                raise TierError(f"sandbox {sandbox_id} exited during start: {_tail(lay.log)}")
            if time.monotonic() > deadline:
                raise TierError(f"envd of {sandbox_id} did not start: {_tail(lay.log)}")
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
        if not pid or not _pid_exists(pid):
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

    # --- checkpoints ---------------------------------------------------------------------

    def has_checkpoint(self, workdir: Path, image_dir: Path | None = None) -> bool:
        return ((image_dir or L.Layout(Path(workdir)).checkpoint) / "checkpoint.img").is_file()

    async def _quiesce(self, sandbox_id: str, workdir: Path) -> None:
        ctl = self._socket_path(sandbox_id, workdir, L.CTL_SOCKET)
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(ctl)), 5)
            writer.write(b"quiesce\n")
            await writer.drain()
            answer = await asyncio.wait_for(reader.readline(), 10)
            writer.close()
        except (OSError, asyncio.TimeoutError) as exc:
            raise TierError(f"sandbox {sandbox_id} did not quiesce: {exc}") from exc
        if answer.strip() != b"ok":
            raise TierError(f"sandbox {sandbox_id} refused to quiesce: {answer!r}")
        for name in L.HOST_SOCKETS:  # the sandbox cannot unlink host files; we do
            L.Layout(workdir).socket(name).unlink(missing_ok=True)

    def _signal_resume(self, workdir: Path) -> None:
        path = L.Layout(workdir).run / L.RESUME_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(f"{time.time_ns()}\n")
        os.replace(tmp, path)

    async def checkpoint(self, sandbox_id: str, workdir: Path, image_dir: Path | None = None, *,
                         leave_running: bool = False, with_disk: bool = False) -> CheckpointInfo:
        workdir = Path(workdir)
        lay = L.Layout(workdir)
        image_dir = image_dir or lay.checkpoint
        t0 = time.perf_counter()
        state = await self.runsc.state(sandbox_id)
        if not state or state.get("status") != "running":
            raise TierError(f"sandbox {sandbox_id} is not running")
        if image_dir == lay.checkpoint and image_dir.exists():
            shutil.rmtree(image_dir)       # our own previous pause image
        elif image_dir.exists() and any(image_dir.iterdir()):
            raise TierError(f"checkpoint directory {image_dir} is not empty")
        image_dir.mkdir(parents=True, mode=0o700, exist_ok=True)
        await self._quiesce(sandbox_id, workdir)
        # runsc cannot checkpoint a paused sandbox, so a snapshot that must carry a matching
        # layer stops the sandbox, copies the layer and restores it (what --leave-running does
        # inside runsc anyway); a plain snapshot lets runsc restart it.
        native_leave = leave_running and not with_disk
        try:
            await self.runsc.call("checkpoint", f"--image-path={image_dir}",
                                  *self.runsc.info.checkpoint_flags,
                                  *(["--leave-running"] if native_leave else []),
                                  sandbox_id, timeout=120)
        except RunscError as exc:
            # A failed runsc checkpoint stops the sandbox (runsc 20221219 and 20240729 alike).
            self._signal_resume(workdir)
            if (await self.runsc.state(sandbox_id) or {}).get("status") != "running":
                self._unwatch(sandbox_id)
                raise TierError(f"checkpoint of {sandbox_id} failed and stopped it: {exc}") from None
            raise
        if native_leave:
            new = await self.runsc.state(sandbox_id)
            self._signal_resume(workdir)
            if new and new.get("pid"):
                self._watch(sandbox_id, int(new["pid"]))
            await self._ready(sandbox_id, lay)
        else:
            self._unwatch(sandbox_id)
            await asyncio.to_thread(self._forget, sandbox_id)
            if with_disk:
                await asyncio.to_thread(self._wait_detached, lay)
                await asyncio.to_thread(disk.sparse_copy, lay.disk, image_dir / "disk.img")
            if leave_running:
                await self.restore(sandbox_id, workdir, image_dir)
        size = sum(f.stat().st_blocks * 512 for f in image_dir.iterdir() if f.is_file())
        return CheckpointInfo(image_dir, size, with_disk, time.perf_counter() - t0)

    def _wait_detached(self, lay: L.Layout) -> None:
        deadline = time.monotonic() + 10
        while disk.loop_devices_backed_by(lay.disk):
            if time.monotonic() > deadline:
                raise TierError("the sandbox's layer is still attached")
            time.sleep(0.002)

    async def restore(self, sandbox_id: str, workdir: Path, image_dir: Path | None = None, *,
                      spec: SandboxSpec | None = None) -> SandboxHandle:
        await self.start()
        workdir = Path(workdir)
        lay = L.Layout(workdir)
        image_dir = image_dir or lay.checkpoint
        if not self.has_checkpoint(workdir, image_dir):
            raise TierError(f"no checkpoint of {sandbox_id} in {image_dir}")
        # Running (or frozen) means its sandbox process lives: we watch it since create, restore
        # or adopt. Anything else runsc kept of it is a stopped record, removed below.
        pid = _read_pid(lay.workdir / PID_FILE)
        if self.is_alive(sandbox_id) or (pid and _pid_exists(pid) and self.cgroups.exists(sandbox_id)
                                         and pid in self.cgroups.pids(sandbox_id)):
            raise TierError(f"sandbox {sandbox_id} is already running")
        if spec is not None:  # a new sandbox from someone else's image (fork)
            if not (image_dir / "disk.img").is_file():
                raise TierError("this checkpoint has no disk layer; it cannot start a new sandbox")
            # (the workdir may exist already: the lifecycle keeps the new sandbox's boot
            # configuration there; a bundle or a layer means the id is taken)
            if self.cgroups.exists(sandbox_id) or lay.bundle.exists() or lay.disk.exists():
                raise TierError(f"sandbox {sandbox_id} already exists")
            lay.workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(lay.workdir, 0o700)
            for d in (lay.bundle, lay.run):
                d.mkdir(mode=0o700)
            await asyncio.to_thread(disk.sparse_copy, image_dir / "disk.img", lay.disk)
            await asyncio.to_thread(self._write_bundle, sandbox_id, lay, spec.rootfs, spec.limits)
            rootfs = str(spec.rootfs)
        else:
            rootfs = json.loads(lay.config.read_text())["annotations"]["dev.corral.rootfs"]
        await asyncio.to_thread(self._wait_detached, lay)
        await asyncio.to_thread(self._forget, sandbox_id)
        await asyncio.to_thread(rundir.mount, lay.run, sandbox_id)   # gone after a host reboot
        await asyncio.to_thread(rundir.clear, lay.run)   # whatever the sandbox left there too
        self._signal_resume(workdir)
        try:
            await self._launch(sandbox_id, lay, rootfs, "restore", None, image_dir)
            handle = await self._ready(sandbox_id, lay)
            if spec is not None:
                await self._set_hostname(sandbox_id, spec.sandbox_id)
            return handle
        except BaseException:
            if spec is not None:
                await self.destroy(sandbox_id, workdir)
            else:  # keep the image: a failed resume must not lose the sandbox
                await asyncio.to_thread(self._forget, sandbox_id)
            raise


    async def _set_hostname(self, sandbox_id: str, hostname: str) -> None:
        """Give a restored copy its own hostname (the restored kernel has its source's; the
        sandbox itself may not change it: no CAP_SYS_ADMIN inside). One process started from the
        host (``runsc exec``) with that capability alone, running the server's read-only Python
        (never a template binary, which the source could have replaced in its layer)."""
        python = bundles.python_mounts()[2]
        await self.runsc.call(
            "exec", "--cap=CAP_SYS_ADMIN", f"--env=LD_LIBRARY_PATH={L.GUEST_PYTHON}/lib", sandbox_id,
            python, "-I", "-S", "-c", "import socket, sys; socket.sethostname(sys.argv[1])", hostname,
            timeout=30)


def launcher_argv() -> list[str]:
    """How the launcher starts: the server's interpreter without ``site`` (-S: no site-packages
    scan, no .pth files) and with corral's own tree first on sys.path; it imports only the
    standard library and corral's mount helpers. Every millisecond here is on every gVisor
    create and resume."""
    root = str(Path(__file__).resolve().parents[3])
    code = ("import sys; sys.path.insert(0, sys.argv.pop(1)); "
            "from corral.runtime.gvisor.launcher import main; sys.exit(main(sys.argv[1:]))")
    return [sys.executable, "-I", "-S", "-c", code, root]


def _read_pid(path: Path) -> int:
    try:
        text = path.read_text().strip()
    except OSError:
        return 0
    return int(text) if text.isdigit() else 0


def _point_bundle_at(lay: L.Layout, netns_path: str) -> None:
    config = json.loads(lay.config.read_text())
    for ns in config["linux"]["namespaces"]:
        if ns["type"] == "network":
            ns["path"] = netns_path
    tmp = lay.config.with_suffix(".tmp")
    tmp.write_text(json.dumps(config, indent=1))
    os.replace(tmp, lay.config)


def _read_line(fd: int) -> str:
    out = b""
    while not out.endswith(b"\n"):
        chunk = os.read(fd, 64)
        if not chunk:
            break
        out += chunk
    return out.decode(errors="replace")


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _launcher_env() -> dict[str, str]:
    return dict(CLEAN_ENV)


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "no log"
    return " | ".join(ln for ln in text.splitlines()[-lines:] if ln.strip()) or "no log"
