"""cgroup v2 (unified hierarchy): one directory, controllers enabled from the parent.

Killing uses ``cgroup.kill`` (Linux 5.14+) which signals every process atomically, including
ones forked during the kill; freezing uses ``cgroup.freeze``.

v2 lets no process sit in a cgroup whose controllers are enabled for children, so a sandbox's
cgroup ``<id>`` holds the limits and two leaves: ``daemon`` (the init and its daemon, with
``memory.min`` so reclaim leaves it its reserve) and ``user`` (every user process, limited below
the sandbox: `headroom`). Freeze, kill and the statistics act on ``<id>``, which covers both.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from corral.runtime.base import Limits
from corral.runtime.namespace.cgroups.base import (
    CPU_PERIOD_USEC, CgroupError, CgroupManager, CgroupStats, read, read_keyed, write,
)
from corral.runtime.headroom import (
    USER_CGROUP, USER_CPU_WEIGHT, choose_cpus, cpusets_in_use, format_cpu_list, parse_cpu_list, user_limits,
)

NEEDED_CONTROLLERS = ("memory", "pids", "cpu")
DAEMON_CGROUP = "daemon"


class CgroupV2(CgroupManager):
    version = 2

    def _dir(self, sandbox_id: str | None = None) -> Path:
        base = self.root / self.group
        return base if sandbox_id is None else base / sandbox_id

    def _enable_controllers(self, directory: Path) -> None:
        available = set(read(directory / "cgroup.controllers").split())
        missing = [c for c in NEEDED_CONTROLLERS if c not in available]
        if missing:
            raise CgroupError(f"cgroup v2 at {directory} lacks controllers {missing}; "
                              "enable them in the parent's cgroup.subtree_control")
        # cpuset is optional: without it a sandbox keeps every other limit, and only its CPU
        # count is not what the affinity mask reports.
        wanted = NEEDED_CONTROLLERS + (("cpuset",) if "cpuset" in available else ())
        enabled = set(read(directory / "cgroup.subtree_control").split())
        todo = [c for c in wanted if c not in enabled]
        if todo:
            write(directory / "cgroup.subtree_control", " ".join("+" + c for c in todo))

    def _cpus_in_use(self) -> list[list[int]]:
        return cpusets_in_use(self.root)

    def _ensure_parent(self) -> None:
        parent = self._dir()
        if not parent.is_dir():
            self._enable_controllers(self.root)
            parent.mkdir(exist_ok=True)
        self._enable_controllers(parent)

    def create(self, sandbox_id: str, limits: Limits) -> None:
        self._ensure_parent()
        d = self._dir(sandbox_id)
        d.mkdir()  # FileExistsError if the id is already in use
        try:
            write(d / "memory.max", str(limits.memory_mb * 1024 * 1024))
            if (d / "memory.swap.max").exists():
                write(d / "memory.swap.max", "0")
            if (d / "memory.oom.group").exists():
                # An OOM kills the offending process only, so envd (pid 1) can survive and
                # report it: keep the default 0 explicitly.
                write(d / "memory.oom.group", "0")
            write(d / "pids.max", str(limits.pids_max))
            write(d / "cpu.max", f"{CPU_PERIOD_USEC * limits.cpu_count} {CPU_PERIOD_USEC}")
            if (d / "cpuset.cpus").exists():
                available = parse_cpu_list(read(d.parent / "cpuset.cpus.effective"))
                write(d / "cpuset.cpus", format_cpu_list(choose_cpus(available, self._cpus_in_use(),
                                                                     limits.cpu_count)))
            self._enable_controllers(d)
            self._create_leaves(d, limits)
        except BaseException:
            for leaf in (d / USER_CGROUP, d / DAEMON_CGROUP, d):
                try:
                    leaf.rmdir()
                except OSError:
                    pass
            raise

    def _create_leaves(self, d: Path, limits: Limits) -> None:
        split = user_limits(limits)
        daemon, user = d / DAEMON_CGROUP, d / USER_CGROUP
        daemon.mkdir()
        if (daemon / "memory.min").exists():
            write(daemon / "memory.min", str(split.daemon_memory_bytes))
        user.mkdir()
        write(user / "memory.max", str(split.memory_bytes))
        if (user / "memory.swap.max").exists():
            write(user / "memory.swap.max", "0")
        write(user / "pids.max", str(split.pids_max))
        if (user / "cpu.weight").exists():
            write(user / "cpu.weight", str(USER_CPU_WEIGHT))

    def user_procs_files(self, sandbox_id: str) -> list[Path]:
        return [self._dir(sandbox_id) / USER_CGROUP / "cgroup.procs"]

    def join(self, sandbox_id: str, pid: int = 0) -> None:
        write(self._dir(sandbox_id) / DAEMON_CGROUP / "cgroup.procs", str(pid or os.getpid()))

    def pids(self, sandbox_id: str) -> list[int]:
        d = self._dir(sandbox_id)
        seen: set[int] = set()
        for where in (d, d / DAEMON_CGROUP, d / USER_CGROUP):
            try:
                seen.update(int(x) for x in read(where / "cgroup.procs").split())
            except FileNotFoundError:
                continue
        return sorted(seen)

    def exists(self, sandbox_id: str) -> bool:
        return self._dir(sandbox_id).is_dir()

    def set_frozen(self, sandbox_id: str, frozen: bool) -> None:
        d = self._dir(sandbox_id)
        if not (d / "cgroup.freeze").exists():
            return
        write(d / "cgroup.freeze", "1" if frozen else "0")
        want = f"frozen {1 if frozen else 0}"
        deadline = time.monotonic() + 5
        while want not in read(d / "cgroup.events"):
            if time.monotonic() > deadline:
                raise CgroupError(f"cgroup.freeze of {sandbox_id} did not settle")
            time.sleep(0.001)

    def kill(self, sandbox_id: str) -> None:
        kill_file = self._dir(sandbox_id) / "cgroup.kill"
        if kill_file.exists():
            write(kill_file, "1")
        else:  # kernels before 5.14
            super().kill(sandbox_id)

    def stats(self, sandbox_id: str) -> CgroupStats:
        d = self._dir(sandbox_id)
        cpu = read_keyed(d / "cpu.stat")
        mem_stat = read_keyed(d / "memory.stat")
        limit = read(d / "memory.max").strip()
        return CgroupStats(
            cpu_usage_usec=cpu.get("usage_usec", 0),
            memory_bytes=int(read(d / "memory.current")),
            memory_cache_bytes=mem_stat.get("file", 0),
            memory_limit_bytes=0 if limit == "max" else int(limit),
        )

    def events(self, sandbox_id: str) -> dict[str, int]:
        d = self._dir(sandbox_id)
        mem = read_keyed(d / "memory.events")
        pids_ev = read_keyed(d / "pids.events") if (d / "pids.events").exists() else {}
        return {"oom_kill": mem.get("oom_kill", 0), "pids_max": pids_ev.get("max", 0)}

    def _rmdir_all(self, sandbox_id: str) -> None:
        d = self._dir(sandbox_id)
        for where in (d / USER_CGROUP, d / DAEMON_CGROUP, d):
            try:
                where.rmdir()
            except FileNotFoundError:
                pass

    def group_dirs(self) -> list[Path]:
        return [self._dir()]

    def list_ids(self) -> list[str]:
        try:
            return sorted(p.name for p in self._dir().iterdir() if p.is_dir())
        except FileNotFoundError:
            return []
