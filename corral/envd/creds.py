"""Run filesystem work with a sandbox user's permissions, without dropping the daemon's own.

Linux credentials are per thread, so a worker thread can switch its fsuid/fsgid and
supplementary groups through raw syscalls and let the kernel do every permission check as the
requesting user (files it creates are owned by that user, /root stays closed to user 1000).
The raw syscalls matter: glibc's setgroups/setuid wrappers broadcast the change to every thread
of the process, which would silently change the identity of the event loop and other workers.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import platform
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

from corral.guest.users import User

T = TypeVar("T")

_SYSCALLS = {
    "x86_64": {"setgroups": 116, "setfsuid": 122, "setfsgid": 123},
    "aarch64": {"setgroups": 159, "setfsuid": 151, "setfsgid": 152},
}

# dlopen(NULL): the symbols of the running program, libc included; works after pivot_root
# because libc is already mapped (ctypes.util.find_library would spawn ldconfig instead).
_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_nr = _SYSCALLS[platform.machine()]


def _set_groups(groups: tuple[int, ...]) -> None:
    arr = (ctypes.c_uint * max(len(groups), 1))(*groups)
    if _syscall(ctypes.c_long(_nr["setgroups"]), ctypes.c_long(len(groups)), arr) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _set_fsid(which: str, value: int) -> None:
    # setfsuid/setfsgid return the previous value and never fail loudly; verify by re-reading.
    _syscall(ctypes.c_long(_nr[which]), ctypes.c_long(value))
    current = _syscall(ctypes.c_long(_nr[which]), ctypes.c_long(-1))
    if current != value:
        raise PermissionError(f"{which}({value}) did not take effect")


def _thread_root_groups() -> tuple[int, ...]:
    return tuple(os.getgroups())


class UserExecutor:
    """A small thread pool whose jobs run under a given user's filesystem identity.

    Each job switches the worker's identity in, and always back to the daemon's, so a failing
    job can never leave a worker thread running as the wrong user.
    """

    def __init__(self, max_workers: int = 4) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="envd-fs")
        self._base_uid = os.geteuid()
        self._base_gid = os.getegid()
        self._base_groups = _thread_root_groups()
        self._local = threading.local()

    def _run_as(self, user: User | None, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        if user is None or (user.uid == self._base_uid and user.gid == self._base_gid):
            return fn(*args)
        try:
            _set_groups(user.groups)
            _set_fsid("setfsgid", user.gid)
            _set_fsid("setfsuid", user.uid)
            return fn(*args)
        finally:
            _set_fsid("setfsuid", self._base_uid)
            _set_fsid("setfsgid", self._base_gid)
            _set_groups(self._base_groups)

    def prestart(self, workers: int) -> None:
        """Start `workers` threads now. A sandbox at its pids limit (a fork bomb) cannot create
        threads, and file operations (the way to clean up after one) must still work then."""
        # Each job waits for the others, so `workers` distinct threads must exist; the caller
        # does not wait for them to get there.
        barrier = threading.Barrier(workers)
        for _ in range(workers):
            self._pool.submit(barrier.wait)

    async def run(self, user: User | None, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._run_as, user, fn, args)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
