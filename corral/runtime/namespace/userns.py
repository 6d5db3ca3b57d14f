"""User namespaces and idmapped mounts: how sandbox uids become unprivileged host uids.

The sandbox's user namespace maps its uids/gids 0..65535 onto ``uid_base..uid_base+65535``.
It is created up front by a short-lived helper process (the kernel only lets the *parent*
user namespace write the maps), so that the same namespace can also be used to idmap the
template: files stored as host uid N appear inside as uid N, and whatever the sandbox creates
lands on the host as ``uid_base + N``.
"""

from __future__ import annotations

import os

from corral.runtime.namespace import syscalls as sc
from corral.runtime.namespace.request import UIDS_PER_SANDBOX


def make_userns(uid_base: int) -> int:
    """Return an fd for a new user namespace mapping 0..65535 to ``uid_base``.."""
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    hold_r, hold_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # helper: enter a fresh user namespace, wait to be looked at, leave
        try:
            os.close(ready_r)
            os.close(hold_w)
            sc.unshare(sc.CLONE_NEWUSER)
            os.write(ready_w, b"1")
            os.read(hold_r, 1)
        finally:
            os._exit(0)
    os.close(ready_w)
    os.close(hold_r)
    try:
        if os.read(ready_r, 1) != b"1":
            raise OSError("user namespace helper failed")
        line = f"0 {uid_base} {UIDS_PER_SANDBOX}\n".encode()
        for name in ("uid_map", "gid_map"):
            fd = os.open(f"/proc/{pid}/{name}", os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(ready_r)
        os.close(hold_w)
        os.waitpid(pid, 0)


def idmapped_bind(source: str, target: str, userns_fd: int) -> None:
    """Bind ``source`` read-only at ``target`` with ownership shifted through ``userns_fd``."""
    fd = sc.open_tree(source, sc.OPEN_TREE_CLONE | sc.OPEN_TREE_CLOEXEC)
    try:
        sc.mount_setattr(fd, sc.MOUNT_ATTR_IDMAP | sc.MOUNT_ATTR_RDONLY | sc.MOUNT_ATTR_NODEV,
                         userns_fd, recursive=False)
        sc.move_mount(fd, target)
    finally:
        os.close(fd)  # an open detached tree would keep the mount busy
