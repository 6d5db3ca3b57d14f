"""Load the real filter into a forked child and probe it (no root needed: no_new_privs)."""

from __future__ import annotations

import ctypes
import errno
import json
import os

from corral.runtime.namespace import seccomp
from corral.runtime.namespace import syscalls as sc

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def _call(nr: int, *args: int) -> int:
    rc = libc.syscall(ctypes.c_long(nr), *[ctypes.c_ulong(a) for a in args])
    return 0 if rc >= 0 else ctypes.get_errno()


def probe_in_child(probes: dict[str, tuple[int, ...]]) -> dict[str, int]:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
            seccomp.load()
            os.write(w, json.dumps({k: _call(*v) for k, v in probes.items()}).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return json.loads(data)


def test_filter_refuses_and_allows_as_declared() -> None:
    res = probe_in_child({
        "getpid": (39,), "unshare_user": (272, 0x10000000), "mount": (165, 0, 0, 0, 0, 0),
        "clone3": (435, 0, 0), "tiocsti": (16, 0, 0x5412, 0),
        "tiocsti_high_bits": (16, 0, (1 << 32) | 0x5412, 0), "tcgets_on_bad_fd": (16, 999, 0x5401, 0),
        "personality_query": (135, 0xFFFFFFFF), "personality_read_implies_exec": (135, 0x0400000),
        "clone_newpid": (56, 0x20000000 | 17, 0, 0, 0, 0), "bpf": (321, 0, 0, 0),
        "ptrace": (101, 0, 0, 0, 0), "vsock": (41, 40, 1, 0),
    })
    assert res["getpid"] == 0
    assert res["tcgets_on_bad_fd"] == errno.EBADF  # ordinary ioctls reach the kernel
    assert res["personality_query"] == 0
    assert res["clone3"] == errno.ENOSYS
    for name in ("unshare_user", "mount", "tiocsti", "tiocsti_high_bits",
                 "personality_read_implies_exec", "clone_newpid", "bpf", "ptrace", "vsock"):
        assert res[name] == errno.EPERM, name


def test_bpf_program_is_compact() -> None:
    assert 0 < len(seccomp.export_bpf()) // 8 < 1000
