"""What happens between the spawner's fork and a running sandbox.

Process tree for one sandbox (all forked, nothing exec'd unless a test asks for it)::

    spawner ──fork──> setup child ──fork──> userns helper (exits at once)
                          └──unshare(mnt,pid,net,uts,ipc,cgroup)──fork──> sandbox init (pid 1)

The setup child joins the sandbox's cgroup first (so everything after is accounted and the
cgroup namespace is rooted there), copies the writable layer, makes the user namespace, then
forks the sandbox's init into the new namespaces, reports its pid and readiness to the tier
and exits; the spawner (a child subreaper) adopts the init and reports its exit later.

The init does the privileged setup as host root in namespaces owned by the host user
namespace, and only at the end enters the sandbox's user namespace, drops capabilities, sets
no_new_privs and loads seccomp. So the sandbox's root owns none of its mount, network, pid,
ipc or uts namespaces: it cannot mount, change the network or the hostname.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from corral.runtime.namespace.proctitle import set_cmdline
from corral.runtime.namespace import capabilities, disk, lxcfs, policy, rootfs, userns, volumes
from corral.runtime.namespace import syscalls as sc
from corral.runtime.namespace.cgroups import CgroupManager
from corral.runtime.headroom import user_limits
from corral.runtime.base import Limits
from corral.wire.constants import DAEMON_OOM_SCORE_ADJ, USER_CGROUP_FDS_ENV, USER_PIDS_MAX_ENV
from corral.runtime.namespace.request import CONFIG_FILE, PORTS_SOCKET_FILE, SOCKET_FILE, SpawnRequest

SANDBOX_NAMESPACES = (sc.CLONE_NEWNS | sc.CLONE_NEWPID | sc.CLONE_NEWNET | sc.CLONE_NEWUTS
                      | sc.CLONE_NEWIPC | sc.CLONE_NEWCGROUP)
SIOCGIFFLAGS = 0x8913
MOUNT_ATTR_NOEXEC = 0x8
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1

# What the init does once it is sandboxed: run the payload in-process, or exec a program (tests,
# debugging). The payload is called as serve(listener, config_bytes, ports_listener).
Serve = Callable[[socket.socket, bytes, socket.socket], None]


@dataclass(frozen=True)
class LoadedPayload:
    serve: Serve
    process_name: bytes


def _send(ctl: socket.socket, msg: dict[str, Any]) -> None:
    ctl.send(json.dumps(msg).encode())


def _reset_signals() -> None:
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM, signal.SIGPIPE, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def setup_child(req: SpawnRequest, ctl: socket.socket, cgroups: CgroupManager,
                seccomp_programs: list[bytes], payload: LoadedPayload | None,
                lxcfs_root: str = "") -> None:
    """Runs in the process forked by the spawner; never returns."""
    code = 1
    try:
        _reset_signals()
        limits = Limits(req.cpu_count, req.memory_mb, req.disk_mb, req.pids_max)
        cgroups.create(req.sandbox_id, limits)
        cgroups.join(req.sandbox_id)
        # Opened as host root: the daemon can move its children into the user cgroup through
        # them without the sandbox ever seeing (or being able to open) the cgroup tree.
        user_cgroup = UserCgroup(tuple(os.open(f, os.O_WRONLY | os.O_CLOEXEC)
                                       for f in cgroups.user_procs_files(req.sandbox_id)),
                                 user_limits(limits).pids_max)
        layer = os.path.join(req.workdir, disk.IMAGE_NAME)
        if os.path.abspath(req.golden_image) != layer:   # else: boot from the kept layer
            disk.sparse_copy(req.golden_image, layer)
        userns_fd = userns.make_userns(req.uid_base)
        sc.unshare(SANDBOX_NAMESPACES)
        ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:
            os.close(ready_r)
            _sandbox_init(req, ctl, userns_fd, ready_w, seccomp_programs, payload, user_cgroup,
                          lxcfs_root)
        os.close(ready_w)
        os.close(userns_fd)
        status = os.read(ready_r, 65536).decode(errors="replace")
        if status == "ok":
            _send(ctl, {"req": req.req, "ok": True, "pid": pid})
            code = 0
        else:
            os.waitpid(pid, 0)
            _send(ctl, {"req": req.req, "ok": False, "error": status or "sandbox init died"})
            code = 0
    except BaseException as exc:  # noqa: BLE001 - everything must be reported, then exit
        try:
            _send(ctl, {"req": req.req, "ok": False, "error": f"setup: {exc}"})
            code = 0
        except OSError:
            pass
    finally:
        os._exit(code)


def _close_fds_except(keep: set[int]) -> None:
    last = -1
    for fd in sorted(keep):
        os.closerange(last + 1, fd)
        last = fd
    os.closerange(last + 1, 1 << 20)


def _bind_unix(workdir: str, name: str) -> socket.socket:
    """A listening socket at workdir/name: a host path the sandbox never sees, bound before the
    pivot. Bound by a relative name: a socket path is limited to 107 bytes, a data dir is not."""
    try:
        os.unlink(os.path.join(workdir, name))
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        os.chdir(workdir)
        sock.bind(name)
    finally:
        os.umask(old_umask)
        os.chdir("/")
    sock.listen(512)
    return sock


def _bring_up_loopback() -> None:
    import fcntl
    import struct

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifreq = struct.pack("16sH14s", b"lo", 0, b"")
        flags = struct.unpack("16sH14s", fcntl.ioctl(s, SIOCGIFFLAGS, ifreq))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14s", b"lo", flags | IFF_UP, b""))


def _write_sysctls() -> None:
    # /proc/sys/net resolves to the *writer's* network namespace, i.e. the sandbox's.
    for key, value in policy.NETNS_SYSCTLS.items():
        with open("/proc/sys/" + key, "w") as f:
            f.write(value)


def _load_seccomp(programs: list[bytes]) -> None:
    import ctypes

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    for prog in programs:
        buf = ctypes.create_string_buffer(prog, len(prog))
        fprog = SockFprog(len(prog) // 8, ctypes.addressof(buf))
        PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
        sc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fprog))


def _config_fd(config: bytes) -> int:
    """The payload configuration for an exec'd init, in an inheritable memfd (no path anywhere)."""
    fd = os.memfd_create("corral-config", 0)
    view = memoryview(config)
    while view:
        view = view[os.write(fd, view):]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


@dataclass(frozen=True)
class UserCgroup:
    procs_fds: tuple[int, ...]
    pids_max: int


def _open_lxcfs(root: str) -> list[tuple[int, str]]:
    """Detached read-only bind mounts of lxcfs's files, made before the pivot: the host path is
    gone after it, and only a detached mount (open_tree) may be attached from a mount that is no
    longer in this namespace."""
    if not root:
        return []
    out: list[tuple[int, str]] = []
    for src, dst in lxcfs.sandbox_binds(root):
        fd = sc.open_tree(src, sc.OPEN_TREE_CLONE | sc.OPEN_TREE_CLOEXEC)
        sc.mount_setattr(fd, sc.MOUNT_ATTR_RDONLY | sc.MOUNT_ATTR_NOSUID | sc.MOUNT_ATTR_NODEV
                         | MOUNT_ATTR_NOEXEC, recursive=False)
        out.append((fd, dst))
    return out


def _bind_lxcfs(mounts: list[tuple[int, str]]) -> None:
    """Over the sandbox's own /proc files (a target the sandbox lacks, such as /sys, is skipped)."""
    for fd, dst in mounts:
        if os.path.exists(dst):
            sc.move_mount(fd, dst)
        os.close(fd)


def _protect_from_oom() -> None:
    """Lowering oom_score_adj needs CAP_SYS_RESOURCE: done while the init still is host root.
    A host whose root lacks it (some VMs and containers) keeps 0; the daemon is then protected by
    the user cgroup alone (an OOM there only ever chooses among user processes)."""
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(DAEMON_OOM_SCORE_ADJ))
    except PermissionError:
        pass


def _sandbox_init(req: SpawnRequest, ctl: socket.socket, userns_fd: int, ready_w: int,
                  seccomp_programs: list[bytes], payload: LoadedPayload | None,
                  user_cgroup: UserCgroup, lxcfs_root: str) -> None:
    """pid 1 of the sandbox. Reports "ok" or an error on ``ready_w``; never returns."""
    try:
        ctl.close()
        os.setsid()
        _protect_from_oom()
        sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
        config_path = os.path.join(req.workdir, CONFIG_FILE)
        with open(config_path, "rb") as f:
            config = f.read()
        os.unlink(config_path)
        config_fd = -1
        if req.init_argv:   # an exec'd init gets the bytes on an inherited fd
            config_fd = _config_fd(config)
            config = b""

        listener = _bind_unix(req.workdir, SOCKET_FILE)
        ports_listener = _bind_unix(req.workdir, PORTS_SOCKET_FILE)

        _write_sysctls()
        _bring_up_loopback()
        sc.sethostname(req.sandbox_id)
        # lxcfs's files are opened before the pivot (its mount is a host path) and bound after.
        lxcfs_fds = _open_lxcfs(lxcfs_root)
        new_root = rootfs.assemble(req.workdir, req.rootfs, req.uid_base, userns_fd)
        prepared = volumes.prepare(req.volumes, req.workdir, userns_fd)
        rootfs.pivot(new_root)
        rootfs.populate(req.sandbox_id, req.uid_base, req.memory_mb)
        volumes.attach(prepared, req.uid_base)
        _bind_lxcfs(lxcfs_fds)

        keep = ({listener.fileno(), ports_listener.fileno(), ready_w, userns_fd, *user_cgroup.procs_fds}
                | ({config_fd} - {-1}))
        _close_fds_except(keep)
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        if null > 2:
            os.close(null)

        sc.setns(userns_fd, sc.CLONE_NEWUSER)
        os.close(userns_fd)
        os.setgroups([])
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
        capabilities.drop_to_policy()
        sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
        _load_seccomp(seccomp_programs)
        random.seed()
        os.environ.clear()
        os.environ.update({"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                           "HOME": "/root", "LANG": "C.UTF-8",
                           USER_CGROUP_FDS_ENV: ",".join(str(fd) for fd in user_cgroup.procs_fds),
                           USER_PIDS_MAX_ENV: str(user_cgroup.pids_max)})
        os.chdir("/")
        set_cmdline(payload.process_name if payload is not None else b"init")
    except BaseException as exc:  # noqa: BLE001
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        try:
            os.write(ready_w, f"sandbox init: {detail}".encode()[:60000])
        finally:
            os._exit(1)

    os.write(ready_w, b"ok")
    os.close(ready_w)
    code = 0
    try:
        if req.init_argv:
            env = {**os.environ, "CORRAL_LISTEN_FD": str(listener.fileno()), "CORRAL_CONFIG_FD": str(config_fd)}
            os.set_inheritable(listener.fileno(), True)
            os.set_inheritable(config_fd, True)
            for fd in user_cgroup.procs_fds:
                os.set_inheritable(fd, True)
            os.execve(req.init_argv[0], req.init_argv, env)
        elif payload is not None:
            payload.serve(listener, config, ports_listener)
        else:
            code = 2
    except BaseException:  # noqa: BLE001
        code = 1
    os._exit(code)
