"""The cgroups runsc makes for a sandbox, found and removed without asking runsc.

runsc creates ``<group>/<id>`` from the bundle's ``cgroupsPath``: on cgroup v1 in every
controller hierarchy it knows (memory, pids, cpu, cpuacct, cpuset, devices, freezer, blkio, ...),
on v2 once in the unified tree. After a crash (runsc state lost, sandbox killed half-way) the tier
must still find and remove them, so this module looks at the filesystem only: every hierarchy
under the cgroup root, v1 and v2 alike.
"""

from __future__ import annotations

import errno
import os
import signal
import time
from pathlib import Path

from corral.runtime.namespace.cgroups.base import CgroupError

CGROUP_ROOT = Path("/sys/fs/cgroup")
SENTRY_HEADROOM_BYTES = 128 * 1024 * 1024


class SandboxCgroups:
    def __init__(self, group: str, root: Path = CGROUP_ROOT) -> None:
        self.group = group
        self.root = root

    @property
    def cgroups_path(self) -> str:
        return f"/{self.group}"

    def path_for(self, sandbox_id: str) -> str:
        return f"/{self.group}/{sandbox_id}"

    def group_dirs(self) -> list[Path]:
        """``<root>/<group>`` (v2) and ``<root>/<controller>/<group>`` (v1), where present."""
        out = []
        if (self.root / self.group).is_dir():
            out.append(self.root / self.group)
        try:
            entries = sorted(os.scandir(self.root), key=lambda e: e.name)
        except FileNotFoundError:
            return out
        for entry in entries:
            d = Path(entry.path) / self.group
            if entry.is_dir(follow_symlinks=False) and d.is_dir() and d not in out:
                out.append(d)
        return out

    def dirs(self, sandbox_id: str) -> list[Path]:
        return [d / sandbox_id for d in self.group_dirs() if (d / sandbox_id).is_dir()]

    def exists(self, sandbox_id: str) -> bool:
        return bool(self.dirs(sandbox_id))

    def list_ids(self) -> list[str]:
        ids: set[str] = set()
        for d in self.group_dirs():
            try:
                ids.update(e.name for e in os.scandir(d) if e.is_dir(follow_symlinks=False))
            except FileNotFoundError:
                continue
        return sorted(ids)

    def pids(self, sandbox_id: str) -> list[int]:
        seen: set[int] = set()
        for d in self.dirs(sandbox_id):
            try:
                seen.update(int(x) for x in (d / "cgroup.procs").read_text().split())
            except (FileNotFoundError, ValueError):
                continue
        return sorted(seen)

    def kill(self, sandbox_id: str) -> None:
        """SIGKILL every process left in the sandbox's cgroups (sentry, gofer, ptrace stubs)."""
        for d in self.dirs(sandbox_id):
            kill_file = d / "cgroup.kill"
            if kill_file.exists():
                try:
                    kill_file.write_text("1")
                    continue
                except OSError:
                    pass
        for pid in self.pids(sandbox_id):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def destroy(self, sandbox_id: str, timeout: float = 10.0) -> None:
        """Kill what is left, wait for the cgroups to empty, remove them. Idempotent."""
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            self.kill(sandbox_id)
            busy = False
            for d in self.dirs(sandbox_id):
                try:
                    d.rmdir()
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    if exc.errno not in (errno.EBUSY, errno.ENOTEMPTY):
                        raise
                    busy = True
            if not busy and not self.dirs(sandbox_id):
                return
            if time.monotonic() > deadline:
                raise CgroupError(f"cgroups of {sandbox_id} still busy after {timeout:.0f}s")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def prepare_cpuset(self) -> None:
        """cgroup v1 refuses a cpuset inside a parent whose cpus and mems are empty, which is
        how a new ``cpuset/<group>`` starts: give the group the host's (runsc does not)."""
        parent = self.root / "cpuset" / self.group
        if not (self.root / "cpuset" / "cpuset.cpus").exists():
            return
        parent.mkdir(exist_ok=True)
        for name in ("cpuset.cpus", "cpuset.mems"):
            if not (parent / name).read_text().strip():
                (parent / name).write_text((self.root / "cpuset" / name).read_text().strip())

    def allow_sentry_headroom(self, sandbox_id: str, memory_bytes: int) -> None:
        """Raise the host memory limit runsc set from the bundle (the sandbox's size, which the
        Sentry has already taken as its MemTotal) by SENTRY_HEADROOM_BYTES: the Sentry's own
        memory and the in-sandbox watchdog's reaction time, so a memory bomb is killed inside
        the sandbox instead of the host killing the Sentry and, with it, the whole sandbox."""
        limit = str(memory_bytes + SENTRY_HEADROOM_BYTES)
        for d in self.dirs(sandbox_id):
            if (d / "memory.max").exists():
                (d / "memory.max").write_text(limit)
            elif (d / "memory.limit_in_bytes").exists():
                # memsw must stay >= the limit: raise it first.
                if (d / "memory.memsw.limit_in_bytes").exists():
                    (d / "memory.memsw.limit_in_bytes").write_text(limit)
                (d / "memory.limit_in_bytes").write_text(limit)

    def remove_group_if_empty(self) -> None:
        for d in self.group_dirs():
            try:
                d.rmdir()
            except OSError:
                pass

    def memory_bytes(self, sandbox_id: str) -> tuple[int, int, int]:
        """(usage, cache, limit) in bytes, v2 or v1."""
        for d in self.dirs(sandbox_id):
            if (d / "memory.current").exists():
                stat = _keyed(d / "memory.stat")
                limit = (d / "memory.max").read_text().strip()
                return (int((d / "memory.current").read_text()), stat.get("file", 0),
                        0 if limit == "max" else int(limit))
            if (d / "memory.usage_in_bytes").exists():
                stat = _keyed(d / "memory.stat")
                return (int((d / "memory.usage_in_bytes").read_text()),
                        stat.get("total_cache", stat.get("cache", 0)),
                        int((d / "memory.limit_in_bytes").read_text()))
        raise CgroupError(f"sandbox {sandbox_id} has no memory cgroup")

    def cpu_usage_usec(self, sandbox_id: str) -> int:
        for d in self.dirs(sandbox_id):
            if (d / "cpu.stat").exists() and (d / "cgroup.controllers").exists():
                return _keyed(d / "cpu.stat").get("usage_usec", 0)
            if (d / "cpuacct.usage").exists():
                return int((d / "cpuacct.usage").read_text()) // 1000
        return 0


def _keyed(path: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        text = path.read_text()
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out
