"""``<workdir>/run``, the one host directory a gVisor sandbox writes to, on a tiny tmpfs of its own.

The sandbox must create its host sockets there (runsc ``--host-uds=create``: envd.sock,
ports.sock, ctl.sock) and the tier writes ``resume`` there, so the directory is bind-mounted
read-write at /run/corral inside. On the host's disk that was a hole in the disk quota: root
inside could fill the host's data directory through it. On its own tmpfs (64 KiB, 16 inodes)
what a sandbox writes there is capped at a few pages, whatever it does.

The mount is in the server's mount namespace (the server must reach the sockets by path, and a
mount made in the launcher's private namespace would be invisible to it), so it is removed
explicitly: by the tier's destroy, and by the janitor for sandboxes that end while no server
runs. Its source names the sandbox (``corral-run-<id>``), which is how both find it again after
a restart; after a host reboot it is simply gone, and a restore mounts a new one.
"""

from __future__ import annotations

import os
from pathlib import Path

from corral.runtime.namespace import syscalls as sc

SIZE = "64k"
INODES = 16


def source_name(sandbox_id: str) -> str:
    return f"corral-run-{sandbox_id}"


def mount(path: Path, sandbox_id: str) -> None:
    """Put the sandbox's run directory on its own tmpfs, unless it already is (a restore)."""
    path.mkdir(mode=0o700, exist_ok=True)
    if mounted_at(sandbox_id) == [str(path)]:
        return
    sc.mount(source_name(sandbox_id), str(path), "tmpfs",
             sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC,
             f"size={SIZE},nr_inodes={INODES},mode=0700,uid=0,gid=0")


def clear(path: Path) -> None:
    """Empty the run directory before a restore binds its sockets again: what the sandbox wrote
    there (it may have filled the 16 inodes) must not keep its own envd from coming back."""
    try:
        names = os.listdir(path)
    except FileNotFoundError:
        return
    for name in names:
        try:
            os.unlink(path / name)
        except IsADirectoryError:
            import shutil

            shutil.rmtree(path / name, ignore_errors=True)
        except FileNotFoundError:
            pass


def unmount(sandbox_id: str) -> None:
    """Remove every tmpfs mount of this sandbox's run directory (lazily: a connection the
    server still holds there must not fail the teardown)."""
    for target in mounted_at(sandbox_id):
        try:
            sc.umount2(target, sc.MNT_DETACH)
        except OSError:
            pass


def mounted_at(sandbox_id: str) -> list[str]:
    """Mount points of this sandbox's run tmpfs in our mount namespace (/proc/self/mountinfo)."""
    want = source_name(sandbox_id)
    out = []
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                pre, _, post = line.partition(" - ")
                fields, tail = pre.split(), post.split()
                if len(fields) > 4 and len(tail) > 1 and tail[0] == "tmpfs" and tail[1] == want:
                    out.append(_unescape(fields[4]))
    except OSError:
        return []
    return out


def _unescape(path: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        path = path.replace(code, char)
    return os.path.normpath(path)
