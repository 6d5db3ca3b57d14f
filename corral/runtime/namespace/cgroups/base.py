"""What the tier needs from a cgroup hierarchy, independent of its version."""

from __future__ import annotations

import abc
import errno
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from corral.runtime.base import Limits


class CgroupError(RuntimeError):
    pass


@dataclass(frozen=True)
class CgroupStats:
    cpu_usage_usec: int
    memory_bytes: int
    memory_cache_bytes: int
    memory_limit_bytes: int


CPU_PERIOD_USEC = 100_000


def write(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)  # O_TRUNC: harmless on cgroupfs
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def read(path: Path) -> str:
    with open(path) as f:
        return f.read()


def read_keyed(path: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in read(path).splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


class CgroupManager(abc.ABC):
    """Creates, limits, freezes, kills and removes ``<group>/<sandbox_id>`` cgroups."""

    version: int

    def __init__(self, root: Path, group: str = "corral") -> None:
        self.root = root
        self.group = group

    @abc.abstractmethod
    def create(self, sandbox_id: str, limits: Limits) -> None:
        """Make the cgroup and set its limits. Fails if the sandbox id is already in use."""

    @abc.abstractmethod
    def join(self, sandbox_id: str, pid: int = 0) -> None:
        """Move ``pid`` (0: the caller) into the sandbox's cgroup."""

    @abc.abstractmethod
    def user_procs_files(self, sandbox_id: str) -> list[Path]:
        """The ``cgroup.procs`` files of the sandbox's user child cgroup (one per v1 controller).
        The init opens them as host root and hands the descriptors to the daemon, which moves
        each user process there (see `corral.guest.limits`)."""

    @abc.abstractmethod
    def pids(self, sandbox_id: str) -> list[int]: ...

    @abc.abstractmethod
    def exists(self, sandbox_id: str) -> bool: ...

    @abc.abstractmethod
    def set_frozen(self, sandbox_id: str, frozen: bool) -> None: ...

    @abc.abstractmethod
    def stats(self, sandbox_id: str) -> CgroupStats: ...

    @abc.abstractmethod
    def events(self, sandbox_id: str) -> dict[str, int]:
        """Counters such as ``oom_kill`` and pids ``max`` hits."""

    @abc.abstractmethod
    def _rmdir_all(self, sandbox_id: str) -> None: ...

    @abc.abstractmethod
    def list_ids(self) -> list[str]: ...

    @abc.abstractmethod
    def group_dirs(self) -> list[Path]:
        """The parent directories of this manager's sandbox cgroups."""

    def remove_group_if_empty(self) -> None:
        """Drop the group's parent cgroups once no sandbox is left in them (server shutdown), so
        per-server groups do not pile up; a group that still holds sandboxes stays."""
        for d in self.group_dirs():
            try:
                d.rmdir()
            except OSError:
                pass

    def _signal_all(self, sandbox_id: str) -> None:
        for pid in self.pids(sandbox_id):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def kill(self, sandbox_id: str) -> None:
        """Freeze (so nothing can fork away), SIGKILL everyone, thaw so the kills land."""
        self.set_frozen(sandbox_id, True)
        try:
            self._signal_all(sandbox_id)
        finally:
            self.set_frozen(sandbox_id, False)

    def destroy(self, sandbox_id: str, timeout: float = 10.0) -> None:
        """Kill every process, wait until the cgroup is empty, remove it. Idempotent."""
        if not self.exists(sandbox_id):
            return
        deadline = time.monotonic() + timeout
        delay = 0.0005
        while True:
            try:
                self.kill(sandbox_id)
                self._rmdir_all(sandbox_id)
                return
            except FileNotFoundError:
                # Removed under us: the spawner's janitor and the server may both clean up.
                if not self.exists(sandbox_id):
                    return
            except OSError as exc:
                if exc.errno not in (errno.EBUSY, errno.ENOTEMPTY):
                    raise
            if time.monotonic() > deadline:
                raise CgroupError(f"cgroup of {sandbox_id} still busy after {timeout}s")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
