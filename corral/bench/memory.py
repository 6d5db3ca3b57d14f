"""Host memory probes: what idle sandboxes really cost the machine, seen from three angles.

No single number is honest on its own. MemAvailable counts everything (kernel objects, page
tables, server bookkeeping) but also every other tenant's noise. A cgroup's usage counts only what
is charged to the sandbox, page cache included. USS (private memory from smaps_rollup) counts what
would be freed if the process died, but misses kernel memory. The benchmark reports all of them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


def meminfo_bytes(meminfo: Path = PROC / "meminfo") -> dict[str, int]:
    """Every kB-valued line of /proc/meminfo, in bytes."""
    out: dict[str, int] = {}
    for line in meminfo.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].endswith(":") and parts[2] == "kB" and parts[1].isdigit():
            out[parts[0][:-1]] = int(parts[1]) * 1024
    return out


def mem_available_bytes(meminfo: Path = PROC / "meminfo") -> int:
    """MemAvailable from /proc/meminfo: the kernel's estimate of what new work could still use."""
    value = meminfo_bytes(meminfo).get("MemAvailable")
    if value is None:
        raise RuntimeError(f"{meminfo} has no MemAvailable line")
    return value


# Kernel memory no cgroup figure shows reliably (v1 may not charge it) and no process owns:
# namespaces, mounts and sockets live in unreclaimable slab, every process has a kernel stack
# and page tables.
KERNEL_FIELDS = ("SUnreclaim", "PageTables", "KernelStack")


def kernel_bytes(meminfo: Path = PROC / "meminfo") -> int:
    info = meminfo_bytes(meminfo)
    return sum(info.get(name, 0) for name in KERNEL_FIELDS)


@dataclass(frozen=True)
class ProcessMemory:
    rss_bytes: int
    uss_bytes: int   # Private_Clean + Private_Dirty: freed when the process exits
    pss_bytes: int   # shared pages split between their users


def process_memory(pid: int, proc: Path = PROC) -> ProcessMemory | None:
    """Memory of one process from smaps_rollup, or None if it is gone or unreadable."""
    fields: dict[str, int] = {}
    try:
        text = (proc / str(pid) / "smaps_rollup").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    except OSError:
        return None
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
            fields[parts[0][:-1]] = int(parts[1]) * 1024
    if "Rss" not in fields:  # kernel threads and zombies have an empty rollup
        return None
    return ProcessMemory(
        rss_bytes=fields.get("Rss", 0),
        uss_bytes=fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0),
        pss_bytes=fields.get("Pss", 0),
    )


def uss_of(pids: list[int], proc: Path = PROC) -> int:
    """Sum of USS over processes; the ones that vanished meanwhile count as zero."""
    total = 0
    for pid in pids:
        mem = process_memory(pid, proc)
        if mem is not None:
            total += mem.uss_bytes
    return total


def _parent_map(proc: Path) -> dict[int, int]:
    parents: dict[int, int] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses; fields restart after the last ')'.
        rest = stat[stat.rfind(")") + 2:].split()
        if len(rest) >= 2:
            parents[int(entry.name)] = int(rest[1])
    return parents


def process_tree(root_pid: int, proc: Path = PROC) -> list[int]:
    """root_pid and every descendant: the whole host-side footprint of a server process."""
    children: dict[int, list[int]] = {}
    for pid, ppid in _parent_map(proc).items():
        children.setdefault(ppid, []).append(pid)
    seen: list[int] = []
    stack = [root_pid]
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.append(pid)
        stack.extend(children.get(pid, []))
    return seen


def listener_pid(port: int, proc: Path = PROC) -> int | None:
    """The pid holding a listening TCP socket on port, so `--url` benches of a local server can
    still measure its memory. None if the port is not ours to see (another host, or a namespace)."""
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if len(cols) < 10 or cols[3] != "0A":  # 0A = TCP_LISTEN
                continue
            local_port = int(cols[1].rsplit(":", 1)[1], 16)
            if local_port == port:
                inodes.add(cols[9])
    if not inodes:
        return None
    targets = {f"socket:[{inode}]" for inode in inodes}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        fd_dir = entry / "fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd_dir / fd) in targets:
                    return int(entry.name)
            except OSError:
                continue
    return None
