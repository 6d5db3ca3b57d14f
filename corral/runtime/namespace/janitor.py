"""What the spawner leaves behind when its server is gone: a janitor for the sandboxes' cgroups.

A sandbox ends itself at its deadline (its init exits, the kernel kills the rest of its pid
namespace, its mounts and loop device go with the mount namespace), but its host-side cgroup
directories stay until someone removes them, and nothing inside the sandbox can. While the
server runs, its teardown does. When the server is gone (a graceful stop that leaves sandboxes
running, or SIGKILL), the spawner sees EOF on its control socket and, if any sandbox of its group
is alive, forks this janitor before it exits: a small host-side process outside every sandbox
cgroup, in its own session (a terminal's Ctrl-C does not reach it), holding nothing but one
pidfd per sandbox init. Each time an init exits it removes that sandbox's cgroup; when none is
left it removes the group's empty parent directories and exits.

A restarted server re-adopts the sandboxes meanwhile; the janitor then still removes a cgroup
when its sandbox ends, which the server's teardown tolerates (removal is idempotent). A paused
(frozen) sandbox does not end by itself; the janitor waits for it like for any other.
"""

from __future__ import annotations

import os
import select
from pathlib import Path

from corral.runtime.namespace.cgroups import CgroupManager
from corral.runtime.namespace.lxcfs import Lxcfs


def find_inits(cgroups: CgroupManager) -> dict[int, str]:
    """pidfd -> sandbox id, for every sandbox of the group whose init is alive."""
    from corral.runtime.namespace.tier import find_init_pid

    watched: dict[int, str] = {}
    for sandbox_id in cgroups.list_ids():
        try:
            pid = find_init_pid(cgroups.pids(sandbox_id))
        except OSError:
            continue
        if not pid:
            continue
        try:
            watched[os.pidfd_open(pid)] = sandbox_id
        except ProcessLookupError:
            continue
    return watched


def clean_up(cgroups: CgroupManager, sandbox_id: str) -> None:
    try:
        cgroups.destroy(sandbox_id)
    except Exception:  # noqa: BLE001 - a janitor keeps going; a restarted server reconciles
        pass


def stop_lxcfs_if_unused(cgroups: CgroupManager, lxcfs_root: str) -> None:
    """The tier's lxcfs, once no sandbox of the group is left (a restarted server's new
    sandboxes count: they use the same lxcfs)."""
    if lxcfs_root and not cgroups.list_ids():
        try:
            Lxcfs.at(Path(lxcfs_root)).stop()
        except OSError:
            pass


def run(cgroups: CgroupManager, watched: dict[int, str], lxcfs_root: str = "") -> None:
    """Wait for every watched init to exit, removing each one's cgroup; then the group's."""
    poller = select.poll()
    for fd in watched:
        poller.register(fd, select.POLLIN)
    while watched:
        try:
            events = poller.poll()
        except InterruptedError:
            continue
        for fd, _ in events:
            sandbox_id = watched.pop(fd)
            poller.unregister(fd)
            os.close(fd)
            clean_up(cgroups, sandbox_id)
    stop_lxcfs_if_unused(cgroups, lxcfs_root)
    cgroups.remove_group_if_empty()


def fork_janitor(cgroups: CgroupManager, lxcfs_root: str = "") -> int:
    """Fork a janitor if any sandbox of the group is alive; returns its pid (0: none needed).

    The child closes every inherited descriptor but its pidfds (above all the control socket,
    whose EOF tells the tier that the spawner is gone), and never returns."""
    watched = find_inits(cgroups)
    if not watched:
        stop_lxcfs_if_unused(cgroups, lxcfs_root)
        return 0
    pid = os.fork()
    if pid:
        for fd in watched:
            os.close(fd)
        return pid
    code = 0
    try:
        os.setsid()
        keep = sorted(set(watched))
        last = -1
        for fd in keep:
            os.closerange(last + 1, fd)
            last = fd
        os.closerange(last + 1, 1 << 20)
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        run(cgroups, watched, lxcfs_root)
    except BaseException:  # noqa: BLE001
        code = 1
    os._exit(code)
