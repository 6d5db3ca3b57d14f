"""Rewrite what /proc/<pid>/cmdline shows for the sandbox's init.

The sandbox's pid 1 is a fork of the host-side spawner, so its argv still names the host's Python,
the spawner module and the server's pid: host details a sandbox has no business reading
(`/proc/1/cmdline` is world-readable). The argv strings live in our own memory between
`arg_start` and `arg_end` (fields 48 and 49 of /proc/self/stat), so overwriting them in place
needs no privilege.
"""

from __future__ import annotations

import ctypes


def set_cmdline(title: bytes) -> None:
    with open("/proc/self/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    # After the ")" closing comm, the first field is number 3 (state).
    arg_start, arg_end = int(fields[48 - 3]), int(fields[49 - 3])
    size = arg_end - arg_start
    if size <= 0:
        return
    data = title[: size - 1]
    ctypes.memmove(arg_start, data + b"\0" * (size - len(data)), size)
