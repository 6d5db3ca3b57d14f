"""Measuring and deleting root filesystem trees without hurting the host.

A rootfs under construction has the host's /proc, /sys and /dev mounted into it (mmdebstrap's
root mode does that), and a build killed with SIGKILL leaves those mounts behind. A plain
recursive delete of such a tree walks into the host's /dev and deletes device nodes, so every
delete here first detaches whatever is mounted below the tree and refuses to go on while
anything is still mounted there.

A published template may also be the lower layer of running sandboxes. Deleting its files would
pull them out from under those sandboxes, so `in_use` looks through every mount namespace on the
host. A visible mount of the tree is the easy case. The namespace tier hides it, though: its
overlay keeps a private clone of the idmapped lower mount and detaches the original, so nothing
names the template any more. Every published rootfs therefore carries a build id
(`marker.py`), and a namespace whose root shows the same id uses the tree. A tree without a
readable id falls back to a conservative rule: it counts as in use while any mount namespace
that holds an overlay mount has a process older than the tree's retirement stamp.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from corral.errors import CorralError
from corral.templates.marker import read_marker

_MNT_DETACH = 2


class TreeBusy(CorralError, RuntimeError):
    """The tree still has something mounted below it; it was left untouched."""


@dataclass(frozen=True)
class _Mount:
    device: str        # "major:minor"
    root: str          # the path inside its filesystem that is mounted
    mount_point: str   # where, in the namespace the mountinfo came from
    fstype: str = ""


@dataclass(frozen=True)
class RetireStamp:
    """When a tree stopped being published, in this boot's clock."""

    boot_id: str
    boottime: float     # seconds since boot (CLOCK_BOOTTIME), like a process's start time

    @classmethod
    def now(cls) -> "RetireStamp":
        return cls(_boot_id(), time.clock_gettime(time.CLOCK_BOOTTIME))

    def dumps(self) -> str:
        return json.dumps({"boot_id": self.boot_id, "boottime": self.boottime}) + "\n"

    @classmethod
    def loads(cls, text: str) -> "RetireStamp | None":
        try:
            data = json.loads(text)
            return cls(str(data["boot_id"]), float(data["boottime"]))
        except (ValueError, KeyError, TypeError):
            return None


def _boot_id() -> str:
    with open("/proc/sys/kernel/random/boot_id") as f:
        return f.read().strip()


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as \\ooo."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def _read_mountinfo(path: str) -> list[_Mount]:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            lines = f.read().splitlines()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []           # the process exited or is not ours to look at
    mounts = []
    for line in lines:
        fields = line.split(" ")
        if len(fields) >= 5:
            fstype = fields[fields.index("-") + 1] if "-" in fields[5:] else ""
            mounts.append(_Mount(fields[2], _unescape(fields[3]), _unescape(fields[4]), fstype))
    return mounts


def _is_within(child: str, parent: str) -> bool:
    return child == parent or child.startswith(parent.rstrip("/") + "/")


def mounts_under(path: Path) -> list[Path]:
    """Mount points at or below `path` in this process's mount namespace, deepest first."""
    target = os.path.realpath(path)
    points = [m.mount_point for m in _read_mountinfo("/proc/self/mountinfo")]
    inside = {p for p in points if _is_within(p, target)}
    return [Path(p) for p in sorted(inside, key=lambda p: p.count("/"), reverse=True)]


def _umount_detach(point: Path) -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if libc.umount2(os.fsencode(point), _MNT_DETACH) != 0:
        err = ctypes.get_errno()
        raise TreeBusy(f"cannot unmount {point}: {os.strerror(err)}")


def remove_tree(path: Path) -> None:
    """Delete `path` and everything below it, unmounting leftovers first. Missing is fine."""
    if not os.path.lexists(path):
        return
    if os.path.islink(path) or not os.path.isdir(path):
        os.unlink(path)
        return
    for point in mounts_under(path):
        _umount_detach(point)
    left = mounts_under(path)
    if left:
        raise TreeBusy(f"{path} still has mounts below it ({left[0]}); not deleting it")
    shutil.rmtree(path)


def _filesystem_path(path: Path) -> tuple[str, str]:
    """(device, path inside its filesystem) of `path`, as mountinfo's `root` field names it."""
    target = os.path.realpath(path)
    own = _read_mountinfo("/proc/self/mountinfo")
    best = max(
        (m for m in own if _is_within(target, m.mount_point)),
        key=lambda m: len(m.mount_point),
    )
    rel = os.path.relpath(target, best.mount_point)
    inner = best.root if rel == "." else os.path.join(best.root, rel)
    return best.device, os.path.normpath(inner)


def _start_time(pid: str) -> float | None:
    """Seconds after boot at which process `pid` started."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            after_name = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(after_name[19]) / os.sysconf("SC_CLK_TCK")


def in_use(path: Path, retired: RetireStamp | None = None, *, stamped: bool = False,
           marker: str | None = None) -> bool:
    """True if a sandbox may still use the tree at `path`.

    A bind or idmapped mount of (a part of) the tree in any mount namespace counts; the kernel
    reports such a mount's `root` by the directory's current name, so it is found even after the
    tree was renamed into the trash. A namespace whose root shows `marker` (the tree's build id)
    counts. Without a marker and with `stamped` (the tree was retired), a namespace holding an
    overlay mount whose oldest process predates `retired` counts; `retired=None` there means the
    time is unknown, and then every such namespace counts.
    """
    device, inner = _filesystem_path(path)
    if marker is not None:
        stamped = False
    same_boot = retired is not None and retired.boot_id == _boot_id()
    if stamped and retired is not None and not same_boot:
        stamped = False                     # retired before a reboot: no sandbox survived that
    oldest: dict[int, float] = {}
    overlay_ns: set[int] = set()
    seen: set[int] = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            ns = os.stat(f"/proc/{entry.name}/ns/mnt").st_ino
        except OSError:
            continue
        if stamped:
            started = _start_time(entry.name)
            if started is not None and started < oldest.get(ns, float("inf")):
                oldest[ns] = started
        if ns in seen:
            continue
        seen.add(ns)
        if marker is not None and read_marker(f"/proc/{entry.name}/root") == marker:
            return True
        for m in _read_mountinfo(f"/proc/{entry.name}/mountinfo"):
            if m.device == device and _is_within(m.root, inner):
                return True
            if m.fstype == "overlay":
                overlay_ns.add(ns)
    if not stamped:
        return False
    limit = retired.boottime if retired is not None else float("inf")
    return any(oldest.get(ns, float("inf")) < limit for ns in overlay_ns)


def disk_usage(path: Path) -> int:
    """Bytes allocated on disk below `path` (like `du -s`), each inode counted once."""
    seen: set[tuple[int, int]] = set()
    total = 0
    stack = [str(path)]
    while stack:
        current = stack.pop()
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen:
            continue
        seen.add(key)
        total += st.st_blocks * 512
        if os.path.isdir(current) and not os.path.islink(current):
            with os.scandir(current) as it:
                stack.extend(e.path for e in it)
    return total


def process_alive(pid: int) -> bool:
    """Whether a process exists (a build directory named after its builder's pid is still in use)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
