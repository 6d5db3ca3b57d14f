"""The first process of a gVisor sandbox: envd behind the relay.

runsc starts it as the sandbox's init with the server's Python mounted read-only at
``/run/corral-code/python`` and only corral's own code and dependencies on ``sys.path``. Its standard
input is a pipe carrying the payload's configuration bytes (for envd the hand-off: the access
token, env vars): it is read once and replaced by /dev/null, so no file ever holds the secret and no host pipe is left
open for a checkpoint to trip over.

The process then binds envd's sandbox-internal sockets (a 0700 directory only the sandbox's root
can enter), starts the relay that owns the host-visible sockets, and serves envd in the main
thread until SIGTERM.
"""

from __future__ import annotations

import os
import socket
import sys

from pathlib import Path

from corral.guest.limits import MemoryWatchdog
from corral.runtime.gvisor import layout
from corral.runtime.gvisor.relay import Relay
from corral.wire.constants import USER_CGROUP_FDS_ENV, USER_NPROC_ENV, USER_PIDS_MAX_ENV
from corral.wire.entry_points import resolve

CLEAN_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
             "HOME": "/root", "LANG": "C.UTF-8"}


def _listen(path: str) -> socket.socket:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(path)
    finally:
        os.umask(old)
    sock.listen(512)
    return sock


def _read_handoff() -> bytes:
    """The payload's configuration bytes (opaque here), then /dev/null as stdin."""
    raw = b""
    while chunk := os.read(0, 1 << 16):
        raw += chunk
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    return raw


def _set_title(title: bytes) -> None:
    """Make /proc/1/cmdline read ``title``: our argv names the server's interpreter path and the
    boot code, host details the sandbox has no business reading. gVisor reports no arg_start in
    /proc/self/stat (the namespace tier's way), so find our argv strings, which the kernel put at
    the top of the stack, by their exact bytes and overwrite them in place."""
    import ctypes

    needle = b"\0".join(os.fsencode(a) for a in [sys.executable, *sys.orig_argv[1:]]) + b"\0"
    with open("/proc/self/maps") as f:
        stack = next((ln.split()[0] for ln in f if ln.rstrip().endswith("[stack]")), None)
    if stack is None:
        return
    start, end = (int(x, 16) for x in stack.split("-"))
    image = ctypes.string_at(start, end - start)
    at = image.rfind(b"\0".join(os.fsencode(a) for a in sys.orig_argv) + b"\0")
    if at < 0:
        at = image.rfind(needle)
        size = len(needle)
    else:
        size = len(b"\0".join(os.fsencode(a) for a in sys.orig_argv)) + 1
    if at < 0:
        return
    data = title[: size - 1]
    ctypes.memmove(start + at, data + b"\0" * (size - len(data)), size)


# Device nodes runsc puts in every sandbox's /dev that the namespace tier's /dev does not have.
# /dev/fuse (runsc 20240729, always on) is the Sentry's own FUSE, not the host's, and mounting a
# FUSE filesystem needs CAP_SYS_ADMIN, which the sandbox lacks; the node goes anyway, so a
# sandbox sees the same /dev on both tiers and nothing is offered that cannot be used.
EXTRA_DEVICES = ("/dev/fuse",)


def _drop_device_nodes() -> None:
    for path in EXTRA_DEVICES:
        try:
            os.unlink(path)
        except OSError:
            pass


def _user_cgroup(pids_max: str, memory_bytes: str) -> None:
    """User processes get less than envd, as on the namespace tier, with what the Sentry offers:
    its own cgroupfs (runsc --cgroupfs; cpu and memory, v1 layout) and its rlimits. envd moves
    every user process into ``memory/user`` through the descriptor left in its environment; the
    Sentry counts that cgroup's memory but does not enforce a limit, so a watchdog does. It has
    no pids controller: RLIMIT_NPROC (which it enforces, per user) caps user processes instead,
    below the host pids limit the Sentry itself needs room under."""
    if not pids_max.isdigit() or not memory_bytes.isdigit():
        return
    os.environ[USER_PIDS_MAX_ENV] = pids_max
    os.environ[USER_NPROC_ENV] = pids_max
    memory = Path(layout.GUEST_CGROUP) / "memory"
    if not (memory / "cgroup.procs").exists():
        return
    user = memory / "user"
    user.mkdir(exist_ok=True)
    try:
        (user / "memory.limit_in_bytes").write_text(memory_bytes)   # shown and counted
    except OSError:
        pass
    os.environ[USER_CGROUP_FDS_ENV] = str(os.open(user / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC))
    if (user / "memory.usage_in_bytes").exists():
        MemoryWatchdog(user, int(memory_bytes)).start()


def main(entry_point: str, user_pids: str = "", user_memory: str = "") -> int:
    """``entry_point`` ("module:function") is the payload, called as
    ``function(listener, config_bytes, ports_listener)``; named, never imported by the runtime.
    ``user_pids``/``user_memory``: the user cgroup's limits (`_user_cgroup`)."""
    config = _read_handoff()
    try:
        _set_title(b"envd")
    except (OSError, ValueError):
        pass   # cosmetic and a hygiene measure; never a reason not to start
    os.environ.clear()
    os.environ.update(CLEAN_ENV)  # nothing of the bootstrap (LD_LIBRARY_PATH) reaches children
    # No preloads: unlike the namespace tier's pivoted init, this one keeps corral's code and
    # libraries mounted, so modules (the interpreter's Jupyter stack above all) load when first
    # used. Every import costs Sentry file calls; the start-up path imports half as much.
    serve = resolve(entry_point)
    _drop_device_nodes()
    os.makedirs(layout.GUEST_INNER_DIR, mode=0o700, exist_ok=True)
    os.chmod(layout.GUEST_INNER_DIR, 0o700)
    try:
        _user_cgroup(user_pids, user_memory)
    except OSError as exc:
        print(f"corral: no user cgroup in this sandbox: {exc}", file=sys.stderr, flush=True)
    inner_envd = _listen(os.path.join(layout.GUEST_INNER_DIR, layout.ENVD_SOCKET))
    inner_ports = _listen(os.path.join(layout.GUEST_INNER_DIR, layout.PORTS_SOCKET))
    relay = Relay(layout.GUEST_RUN_DIR,
                  {layout.ENVD_SOCKET: inner_envd.getsockname(),
                   layout.PORTS_SOCKET: inner_ports.getsockname()},
                  layout.CTL_SOCKET, layout.RESUME_FILE)
    relay.start()
    os.chdir("/")
    serve(inner_envd, config, inner_ports)
    return 0


if __name__ == "__main__":
    sys.exit(main())
