"""Memory checkpoints of gVisor sandboxes (``runsc checkpoint`` / ``restore``): full-mode pause,
full snapshots and memory forks (:class:`corral.runtime.checkpoint.Checkpointing`).

A mixin of :class:`corral.runtime.gvisor.tier.GVisorTier`, split out by concern: it uses the
tier's ``runsc``, ``cgroups``, ``start``, ``destroy`` and its launch steps (``_launch``,
``_ready``, ``_forget``, ``_watch``/``_unwatch``, ``_socket_path``, ``_write_bundle``).

Before a checkpoint the sandbox's relay closes its host sockets (``quiesce`` on ctl.sock: gVisor
cannot save a bound host socket); after a restore the tier writes a new generation into
``run/resume`` and the relay binds them again.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from pathlib import Path

from corral.runtime.base import SandboxHandle, SandboxSpec, TierError
from corral.runtime.checkpoint import CheckpointInfo
from corral.runtime.gvisor import bundle as bundles
from corral.runtime.gvisor import layout as L
from corral.runtime.gvisor import rundir
from corral.runtime.gvisor.procs import PID_FILE, pid_exists, read_pid
from corral.runtime.gvisor.runsc import RunscError
from corral.runtime.namespace import disk


class GVisorCheckpoints:
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
        pid = read_pid(lay.workdir / PID_FILE)
        if self.is_alive(sandbox_id) or (pid and pid_exists(pid) and self.cgroups.exists(sandbox_id)
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
