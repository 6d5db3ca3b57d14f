"""cgroup v1: one directory per controller (memory, pids, cpu, cpuacct, freezer, cpuset).

Still the layout of many hosts (and of the corral dev VM). Swap is limited through
``memory.memsw`` when swap accounting is on, so the memory limit cannot be dodged by swapping.
User processes go one level down, into ``<id>/user`` of the memory, pids and cpu controllers
(`headroom`); freezer, cpuacct and cpuset stay per sandbox, so freezing, accounting and the
CPU set cover the daemon and its users alike.
"""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

from corral.runtime.base import Limits
from corral.runtime.namespace.cgroups.base import (
    CPU_PERIOD_USEC, CgroupError, CgroupManager, CgroupStats, read, read_keyed, write,
)
from corral.runtime.headroom import (
    USER_CGROUP, USER_CPU_SHARES, choose_cpus, cpusets_in_use, format_cpu_list, parse_cpu_list, user_limits,
)

BASE_CONTROLLERS = ("memory", "pids", "cpu", "cpuacct", "freezer")
USER_CONTROLLERS = ("memory", "pids", "cpu")


class CgroupV1(CgroupManager):
    version = 1

    def __init__(self, root: Path, group: str = "corral") -> None:
        super().__init__(root, group)
        # cpuset is optional: a host without it still gets every other limit.
        self.controllers = BASE_CONTROLLERS + (("cpuset",) if (root / "cpuset").is_dir() else ())

    def _dir(self, controller: str, sandbox_id: str | None = None) -> Path:
        base = self.root / controller / self.group
        return base if sandbox_id is None else base / sandbox_id

    def _ensure_parents(self) -> None:
        for ctrl in self.controllers:
            parent = self._dir(ctrl)
            if not parent.is_dir():
                parent.mkdir(exist_ok=True)
        if "cpuset" in self.controllers:
            # A v1 cpuset takes no task until its cpus and mems are set: inherit the host's.
            parent = self._dir("cpuset")
            for name in ("cpuset.cpus", "cpuset.mems"):
                if not read(parent / name).strip():
                    write(parent / name, read(parent.parent / name).strip())

    def _cpus_in_use(self) -> list[list[int]]:
        return cpusets_in_use(self.root)

    def _set_cpuset(self, d: Path, cpu_count: int) -> None:
        parent = d.parent
        available = parse_cpu_list(read(parent / "cpuset.effective_cpus"))
        cpus = choose_cpus(available, self._cpus_in_use(), cpu_count)
        write(d / "cpuset.cpus", format_cpu_list(cpus))
        write(d / "cpuset.mems", read(parent / "cpuset.effective_mems").strip())

    def create(self, sandbox_id: str, limits: Limits) -> None:
        self._ensure_parents()
        made: list[Path] = []
        try:
            for ctrl in self.controllers:
                d = self._dir(ctrl, sandbox_id)
                d.mkdir()  # FileExistsError if the id is already in use: never share a cgroup
                made.append(d)
            if "cpuset" in self.controllers:
                self._set_cpuset(self._dir("cpuset", sandbox_id), limits.cpu_count)
            mem = self._dir("memory", sandbox_id)
            limit = str(limits.memory_mb * 1024 * 1024)
            write(mem / "memory.limit_in_bytes", limit)
            if (mem / "memory.memsw.limit_in_bytes").exists():
                write(mem / "memory.memsw.limit_in_bytes", limit)
            write(mem / "memory.swappiness", "0")
            write(self._dir("pids", sandbox_id) / "pids.max", str(limits.pids_max))
            cpu = self._dir("cpu", sandbox_id)
            write(cpu / "cpu.cfs_period_us", str(CPU_PERIOD_USEC))
            write(cpu / "cpu.cfs_quota_us", str(CPU_PERIOD_USEC * limits.cpu_count))
            made += self._create_user(sandbox_id, limits)
        except BaseException:
            for d in reversed(made):
                try:
                    d.rmdir()
                except OSError:
                    pass
            raise

    def _create_user(self, sandbox_id: str, limits: Limits) -> list[Path]:
        """The user child of the memory, pids and cpu controllers, limited below the sandbox."""
        split = user_limits(limits)
        made: list[Path] = []
        for ctrl in USER_CONTROLLERS:
            d = self._dir(ctrl, sandbox_id) / USER_CGROUP
            d.mkdir()
            made.append(d)
        mem = self._dir("memory", sandbox_id) / USER_CGROUP
        write(mem / "memory.limit_in_bytes", str(split.memory_bytes))
        if (mem / "memory.memsw.limit_in_bytes").exists():
            write(mem / "memory.memsw.limit_in_bytes", str(split.memory_bytes))
        write(mem / "memory.swappiness", "0")
        write(self._dir("pids", sandbox_id) / USER_CGROUP / "pids.max", str(split.pids_max))
        write(self._dir("cpu", sandbox_id) / USER_CGROUP / "cpu.shares", str(USER_CPU_SHARES))
        return made

    def user_procs_files(self, sandbox_id: str) -> list[Path]:
        return [self._dir(ctrl, sandbox_id) / USER_CGROUP / "cgroup.procs" for ctrl in USER_CONTROLLERS]

    def join(self, sandbox_id: str, pid: int = 0) -> None:
        for ctrl in self.controllers:
            write(self._dir(ctrl, sandbox_id) / "cgroup.procs", str(pid or os.getpid()))

    def pids(self, sandbox_id: str) -> list[int]:
        seen: set[int] = set()
        for ctrl in ("pids", "freezer", "memory"):
            try:
                text = read(self._dir(ctrl, sandbox_id) / "cgroup.procs")
            except FileNotFoundError:
                continue
            seen.update(int(x) for x in text.split())
        return sorted(seen)

    def exists(self, sandbox_id: str) -> bool:
        return any(self._dir(c, sandbox_id).is_dir() for c in self.controllers)

    def set_frozen(self, sandbox_id: str, frozen: bool) -> None:
        state_file = self._dir("freezer", sandbox_id) / "freezer.state"
        if not state_file.exists():
            return
        want = "FROZEN" if frozen else "THAWED"
        write(state_file, want)
        # FREEZING is transitional; wait (bounded) until every task is really stopped.
        deadline = time.monotonic() + 5
        while read(state_file).strip() != want:
            if time.monotonic() > deadline:
                raise CgroupError(f"freezer of {sandbox_id} stuck before {want}")
            write(state_file, want)
            time.sleep(0.001)

    def stats(self, sandbox_id: str) -> CgroupStats:
        mem = self._dir("memory", sandbox_id)
        st = read_keyed(mem / "memory.stat")
        usage_ns = int(read(self._dir("cpuacct", sandbox_id) / "cpuacct.usage"))
        return CgroupStats(
            cpu_usage_usec=usage_ns // 1000,
            memory_bytes=int(read(mem / "memory.usage_in_bytes")),
            memory_cache_bytes=st.get("total_cache", st.get("cache", 0)),
            memory_limit_bytes=int(read(mem / "memory.limit_in_bytes")),
        )

    def events(self, sandbox_id: str) -> dict[str, int]:
        out: dict[str, int] = {}
        oom = read_keyed(self._dir("memory", sandbox_id) / "memory.oom_control")
        out["oom_kill"] = oom.get("oom_kill", 0)
        pids_ev = read_keyed(self._dir("pids", sandbox_id) / "pids.events")
        out["pids_max"] = pids_ev.get("max", 0)
        return out

    def _rmdir_all(self, sandbox_id: str) -> None:
        busy: OSError | None = None
        dirs = [self._dir(ctrl, sandbox_id) / USER_CGROUP for ctrl in USER_CONTROLLERS]
        for d in dirs + [self._dir(ctrl, sandbox_id) for ctrl in self.controllers]:
            try:
                d.rmdir()
            except FileNotFoundError:
                pass
            except OSError as exc:
                if exc.errno not in (errno.EBUSY, errno.ENOTEMPTY):
                    raise
                busy = exc
        if busy is not None:
            raise busy

    def group_dirs(self) -> list[Path]:
        return [self._dir(ctrl) for ctrl in self.controllers]

    def list_ids(self) -> list[str]:
        ids: set[str] = set()
        for ctrl in self.controllers:
            try:
                ids.update(p.name for p in self._dir(ctrl).iterdir() if p.is_dir())
            except FileNotFoundError:
                pass
        return sorted(ids)
