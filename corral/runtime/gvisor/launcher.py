"""Assemble a sandbox's root filesystem in a private mount namespace, then exec runsc.

Run by the tier as ``python -I -S ... '<json>'`` (corral.runtime.gvisor.procs.launcher_argv), or
ahead of time with ``--wait``, reading that JSON from stdin when a sandbox needs it. The process
unshares its mount namespace, attaches the sandbox's ext4 image (its disk quota) to an
auto-clearing loop device, mounts it, and mounts an overlay of the read-only template under a
writable upper directory on that image. For a sandbox with egress it also unshares a network
namespace and waits while the tier attaches the sandbox's uplink there. It then execs ``runsc run`` (or ``restore``): runsc's
gofer, which serves the sandbox's files, inherits this mount namespace. Nothing is mounted in the
host's namespace, so when the sandbox's last process exits the kernel drops the mounts and the
loop device detaches itself: a crashed server or tier leaves no mount behind.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

from corral.runtime.namespace import disk
from corral.runtime.namespace import syscalls as sc
from corral.runtime.namespace import volumes as shared_volumes


def assemble(workdir: str, rootfs: str, binds: list[list[str]] = []) -> str:  # noqa: B006
    """Mount the writable layer and the overlay, then bind ``binds`` ([host dir, path inside])
    read-only into it; return the overlay's mount point.

    The binds (envd's interpreter and code) become part of the root filesystem as the gofer
    serves it, rather than separate OCI mounts: runsc revalidates every lookup on separate mounts
    but caches the root's (file-access=exclusive), which halves envd's start-up inside gVisor."""
    layer, root = os.path.join(workdir, "layer"), os.path.join(workdir, "root")
    for d in (layer, root):
        os.makedirs(d, mode=0o700, exist_ok=True)
    lfd, dev = disk.attach_loop(Path(workdir) / disk.IMAGE_NAME)
    try:
        sc.mount(dev, layer, "ext4", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOATIME, "")
    finally:
        os.close(lfd)  # the mount alone holds the device from here on (AUTOCLEAR)
    upper, work = os.path.join(layer, "upper"), os.path.join(layer, "work")
    os.makedirs(upper, mode=0o755, exist_ok=True)
    os.makedirs(work, mode=0o700, exist_ok=True)
    os.chdir(workdir)  # relative option paths: long data dirs would overflow the option page
    sc.mount("overlay", root, "overlay", sc.MS_NOSUID | sc.MS_NODEV,
             f"lowerdir={rootfs},upperdir=layer/upper,workdir=layer/work")
    os.chdir("/")
    for source, dest in binds:
        target = os.path.join(root, dest.lstrip("/"))
        _mkdirs_inside(root, dest)
        sc.mount(source, target, None, sc.MS_BIND | sc.MS_REC)
        sc.mount(None, target, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | sc.MS_NOSUID
                 | sc.MS_NODEV)
    return root


def mount_volumes(root: str, volumes: list[list[str]]) -> None:
    """Mount each volume's image ([image, host dir, path inside]) at its host dir, through the
    loop device every sandbox mounting it shares (runtime/namespace/volumes.py), and make its
    mount point inside the root without following a symlink: the bundle's OCI bind mounts then
    put it there. Runs in the launcher's private mount namespace, like the root itself."""
    for image, source, dest in volumes:
        os.makedirs(source, mode=0o700, exist_ok=True)
        shared_volumes.mount_shared(image, source)
        try:
            _mkdirs_inside(root, dest)
        except OSError as exc:
            raise OSError(f"volume mount path {dest!r} crosses a symlink or a file: {exc}") from None


def _mkdirs_inside(root: str, dest: str) -> None:
    """Create ``dest``'s directories under ``root`` without following a symlink the template
    (or an earlier sandbox run) may have planted: each component is opened O_NOFOLLOW."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in [p for p in dest.split("/") if p]:
            if part in (".", ".."):
                raise OSError(f"bad mount destination {dest!r}")
            try:
                os.mkdir(part, 0o755, dir_fd=fd)
            except FileExistsError:
                pass
            nfd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                          dir_fd=fd)
            os.close(fd)
            fd = nfd
    finally:
        os.close(fd)


def _network_holder(sync_w: int) -> int:
    """Fork a process that holds a new network namespace until runsc has joined it.

    runsc itself must stay in the host's namespace (its control socket is an abstract socket,
    which lives in the namespace it is made in, and later runsc calls come from the host); only
    the sandbox joins the new one, by path (/proc/<holder>/ns/net). The holder dies with runsc
    run (PDEATHSIG), i.e. once the sandbox is started. The tier learns its pid from ``sync_w``
    and attaches the sandbox's uplink there: gVisor's network stack takes over the namespace's
    interfaces when it boots, so they must be in place before."""
    parent = os.getpid()
    pid = os.fork()
    if pid:
        os.close(sync_w)
        return pid
    try:
        sc.prctl(sc.PR_SET_PDEATHSIG, 9)
        if os.getppid() != parent:
            os._exit(1)
        sc.unshare(sc.CLONE_NEWNET)
        _loopback_up()
        os.write(sync_w, f"{os.getpid()}\n".encode())
        os.close(sync_w)
        while True:
            signal.pause()
    finally:
        os._exit(1)


def _await_go(sync_r: int) -> bool:
    answer = os.read(sync_r, 1)
    os.close(sync_r)
    return answer == b"g"


def _loopback_up() -> None:
    """runsc copies the namespace's interfaces into gVisor's stack and skips those that are
    down, loopback included."""
    import fcntl
    import socket
    import struct

    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sH14s", b"lo", 0, b"")
        flags = struct.unpack("16sH14s", fcntl.ioctl(s, siocgifflags, req))[1]
        fcntl.ioctl(s, siocsifflags, struct.pack("16sH14s", b"lo", flags | iff_up, b""))


def _hide_root_netns_marker(netns_path: str) -> None:
    """runsc refuses --network=sandbox "in the root network namespace", which it detects by
    /proc/sys/net/core/rmem_default existing once it has joined the sandbox's namespace. Since
    Linux 6.x that file exists in every namespace, so runsc (20221219 and 20240729 alike) refuses
    every namespace. Hide the directory, as seen from the sandbox's namespace, in this private
    mount namespace only: runsc's check then sees the truth."""
    host = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    target = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        sc.setns(target, sc.CLONE_NEWNET)
        try:
            sc.mount("tmpfs", "/proc/sys/net/core", "tmpfs", sc.MS_RDONLY | sc.MS_NOSUID
                     | sc.MS_NODEV | sc.MS_NOEXEC, "size=0")
        finally:
            sc.setns(host, sc.CLONE_NEWNET)
    finally:
        os.close(host)
        os.close(target)


def _read_exact(fd: int, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = os.read(fd, n - len(out))
        if not chunk:
            break
        out += chunk
    return out


def _wait_for_spec() -> dict | None:  # type: ignore[type-arg]
    """A launcher started ahead of time (``--wait``): block until the tier sends a spec (length,
    then JSON: corral.runtime.gvisor.procs.frame_spec) on stdin, read exactly that (what follows
    is the sandbox's hand-off, left in the pipe for its init), and send our output to its log.
    End-of-file first: the tier dismissed us."""
    header = _read_exact(0, 8)
    if len(header) < 8:
        return None
    spec = json.loads(_read_exact(0, int.from_bytes(header, "big")))
    log = os.open(spec["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    return spec


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--wait":
        waited = _wait_for_spec()
        if waited is None:
            return 0
        spec = waited
    else:
        spec = json.loads(argv[0])
    netns = spec.get("sync") is not None
    if netns:
        sync_w, sync_r = spec["sync"]
        holder = _network_holder(sync_w)
        if not _await_go(sync_r):
            print("corral launcher: the network was not attached", file=sys.stderr)
            return 4
    sc.unshare(sc.CLONE_NEWNS)
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
    if netns:
        _hide_root_netns_marker(f"/proc/{holder}/ns/net")
    try:
        root = assemble(spec["workdir"], spec["rootfs"], spec.get("binds", []))
        mount_volumes(root, spec.get("volumes", []))
    except OSError as exc:
        print(f"corral launcher: cannot assemble the root filesystem: {exc}", file=sys.stderr)
        return 3
    cmd = spec["argv"]
    os.execve(cmd[0], cmd, spec["env"])
    return 127  # pragma: no cover - execve does not return


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
