"""One lxcfs per server, so a namespace sandbox's /proc shows its own limits, as in a VM.

Debian's ``lxcfs`` (the tool LXC and Incus use) is a FUSE filesystem whose ``proc/meminfo``,
``proc/cpuinfo``, ``proc/stat``, ``proc/uptime`` … and ``sys/devices/system/cpu/online`` answer
for the cgroup and pid namespace of whoever reads them: the memory limit as MemTotal, the cpuset
as the CPUs, the start of the reader's pid namespace as uptime. Each sandbox's init binds those
files over its own /proc (in its private mount namespace, `launch`), so ``free``, ``nproc`` and
``os.cpu_count()`` report the sandbox.

Lifetime: lxcfs runs in its own session with its mount under the tier's state directory, one
per cgroup group (``lxcfs-<group>``: servers that share a state directory but not a group are
separate servers, and one's last sandbox must not stop the lxcfs another's sandboxes read), and
outlives the server, because a running sandbox's bind mounts point into it (a dead lxcfs would
make their /proc/meminfo fail with ENOTCONN). A restarted server adopts the live one; a mount
whose lxcfs is gone is detached and replaced. It is stopped when the last sandbox is gone: by
the tier's close, or by the spawner's janitor when the server died without one.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

log = logging.getLogger(__name__)

# What lxcfs virtualizes and a sandbox gets (a file lxcfs lacks is skipped).
PROC_FILES = ("cpuinfo", "diskstats", "loadavg", "meminfo", "stat", "swaps", "uptime")
SYS_FILES = ("devices/system/cpu/online",)
MNT_DETACH = 2


def sandbox_binds(root: str) -> list[tuple[str, str]]:
    """(lxcfs file, path inside the sandbox) for every file this lxcfs provides."""
    pairs = [(f"{root}/proc/{name}", f"/proc/{name}") for name in PROC_FILES]
    pairs += [(f"{root}/sys/{name}", f"/sys/{name}") for name in SYS_FILES]
    return [(src, dst) for src, dst in pairs if os.path.exists(src)]


def _umount(path: Path) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.umount2(str(path).encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):
            raise OSError(err, os.strerror(err), str(path))


class Lxcfs:
    """Supervises the lxcfs mounted at ``<state_dir>/<name>``."""

    def __init__(self, state_dir: Path, binary: str | None = None, name: str = "lxcfs") -> None:
        self.mountpoint = state_dir / name
        self.pidfile = state_dir / f"{name}.pid"
        self.logfile = state_dir / f"{name}.log"
        self.binary = binary or shutil.which("lxcfs", path="/usr/bin:/usr/sbin:/bin:/sbin")

    @classmethod
    def at(cls, mountpoint: Path) -> "Lxcfs":
        """The supervisor of the lxcfs mounted at ``mountpoint`` (the janitor knows only that)."""
        return cls(mountpoint.parent, name=mountpoint.name)

    def _pid(self) -> int | None:
        """The live lxcfs of the pidfile (a zombie is reaped, if it is ours, and not live)."""
        try:
            pid = int(self.pidfile.read_text().strip())
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except (OSError, ValueError):
            return None
        name, state = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:][:1]
        if state == "Z":
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            return None
        return pid if name == "lxcfs" else None

    def serving(self) -> bool:
        """Mounted, with a live lxcfs answering."""
        if not os.path.ismount(self.mountpoint) or self._pid() is None:
            return False
        try:
            with open(self.mountpoint / "proc" / "uptime") as f:
                return bool(f.read())
        except OSError:
            return False

    def ensure(self, timeout: float = 30.0) -> str | None:
        """Adopt or start lxcfs; the mount's path, or None when lxcfs is not installed (sandboxes
        then see the host's numbers, and a warning says so). Servers that share a state dir
        take turns (a file lock): without it one server's start stopped another's lxcfs as
        "stale" while it was still coming up, and both fell back to the host's /proc."""
        self.mountpoint.parent.mkdir(parents=True, exist_ok=True)
        with open(self.mountpoint.parent / f".{self.mountpoint.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            return self._ensure_locked(timeout)

    def _ensure_locked(self, timeout: float) -> str | None:
        if self.serving():
            return str(self.mountpoint)
        if self.binary is None:
            log.warning("lxcfs is not installed: namespace sandboxes see the host's /proc/meminfo, "
                        "cpuinfo and uptime (apt-get install lxcfs)")
            return None
        self.stop()   # a stale mount or a half-dead lxcfs from a killed server
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        with open(self.logfile, "ab") as out:
            subprocess.Popen([self.binary, "-f", "-p", str(self.pidfile), str(self.mountpoint)],
                             stdin=subprocess.DEVNULL, stdout=out, stderr=out, close_fds=True,
                             start_new_session=True)
        deadline = time.monotonic() + timeout
        while not self.serving():
            if time.monotonic() > deadline:
                self.stop()
                raise OSError(f"lxcfs did not come up at {self.mountpoint} (see {self.logfile})")
            time.sleep(0.02)
        return str(self.mountpoint)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop lxcfs and remove its mount; only when no sandbox uses it any more."""
        pid = self._pid()
        if pid is not None:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + timeout
            while self._pid() is not None and time.monotonic() < deadline:
                time.sleep(0.02)
            if self._pid() is not None:
                os.kill(pid, signal.SIGKILL)
        _umount(self.mountpoint)
        for path in (self.pidfile,):
            try:
                path.unlink()
            except FileNotFoundError:
                pass
        try:
            self.mountpoint.rmdir()
        except OSError:
            pass
