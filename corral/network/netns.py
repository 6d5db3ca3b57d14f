"""Doing things inside another network namespace without moving the server there.

The manager normally works in the host's own (root) network namespace, but tests give it a
throw-away "world" namespace so that a bug can never put a packet on the real network. Two
kinds of work need the right namespace:

* commands (`ip`, `nft`): they are prefixed with `nsenter --net=PATH`;
* sockets (the DNS resolver's listening and upstream sockets) and `/proc/sys/net` writes: a
  socket or sysctl file belongs to the namespace of the *thread* that created it, so a short-lived
  thread joins the namespace with setns(2), does the work and exits. The event loop's thread
  never changes namespace.

Python 3.11 has no `os.setns`, hence the small ctypes call.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import socket
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns(CLONE_NEWNET): {os.strerror(err)}")


def run_in_netns(path: str | None, fn: Callable[[], T]) -> T:
    """Run `fn` in a fresh thread that has joined the network namespace at `path`.

    `path=None` means the caller's own namespace: `fn` runs directly.
    """
    if path is None:
        return fn()
    box: dict[str, object] = {}

    def worker() -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                _setns(fd)
            finally:
                os.close(fd)
            box["value"] = fn()
        except BaseException as exc:  # handed back to the caller's thread
            box["error"] = exc

    t = threading.Thread(target=worker, name="corral-netns", daemon=True)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


async def arun_in_netns(path: str | None, fn: Callable[[], T]) -> T:
    if path is None:
        return fn()
    return await asyncio.to_thread(run_in_netns, path, fn)


def make_socket(path: str | None, family: int, type_: int, bind: tuple[str, int] | None = None,
                *, reuse: bool = False) -> socket.socket:
    """A non-blocking socket that lives in the namespace at `path` (bound there if asked)."""

    def create() -> socket.socket:
        s = socket.socket(family, type_ | socket.SOCK_CLOEXEC)
        try:
            if reuse:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if bind is not None:
                s.bind(bind)
            s.setblocking(False)
        except BaseException:
            s.close()
            raise
        return s

    return run_in_netns(path, create)


def write_sysctl(path: str | None, key: str, value: str) -> None:
    """Write `/proc/sys/<key>` as seen from the namespace at `path`."""

    def write() -> None:
        with open("/proc/sys/" + key, "w") as f:
            f.write(value)

    run_in_netns(path, write)


def read_sysctl(path: str | None, key: str) -> str:
    def read() -> str:
        with open("/proc/sys/" + key) as f:
            return f.read().strip()

    return run_in_netns(path, read)


def netns_prefix(path: str | None) -> list[str]:
    """argv prefix that runs a command inside the namespace at `path`."""
    return [] if path is None else ["nsenter", f"--net={path}", "--"]
