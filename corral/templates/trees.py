"""Measuring and deleting root filesystem trees without hurting the host.

A rootfs under construction has the host's /proc, /sys and /dev mounted into it (mmdebstrap's
root mode does that), and a build killed with SIGKILL leaves those mounts behind. A plain
recursive delete of such a tree walks into the host's /dev and deletes device nodes, so every
delete here first detaches whatever is mounted below the tree and refuses to go on while
anything is still mounted there.

A published template may also be the lower layer of running sandboxes. Deleting its files would
pull them out from under those sandboxes, so `in_use` looks through every mount namespace on the
host for a mount of (a part of) the tree.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

_MNT_DETACH = 2


class TreeBusy(RuntimeError):
    """The tree still has something mounted below it; it was left untouched."""


@dataclass(frozen=True)
class _Mount:
    device: str        # "major:minor"
    root: str          # the path inside its filesystem that is mounted
    mount_point: str   # where, in the namespace the mountinfo came from


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
            mounts.append(_Mount(fields[2], _unescape(fields[3]), _unescape(fields[4])))
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


def in_use(path: Path) -> bool:
    """True if any mount namespace on the host has (a part of) `path` mounted.

    Sandboxes see a template through a bind or idmapped mount of its rootfs; the kernel reports
    such a mount's `root` by the directory's current name, so this still finds it after the
    template directory was renamed into the trash.
    """
    device, inner = _filesystem_path(path)
    seen: set[int] = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            ns = os.stat(f"/proc/{entry.name}/ns/mnt").st_ino
        except OSError:
            continue
        if ns in seen:
            continue
        seen.add(ns)
        for m in _read_mountinfo(f"/proc/{entry.name}/mountinfo"):
            if m.device == device and _is_within(m.root, inner):
                return True
    return False


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
