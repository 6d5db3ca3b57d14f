"""Render :mod:`policy`'s syscall rules into a kernel filter with libseccomp (via ctypes).

libseccomp ships with every Debian/Ubuntu/Fedora base system, so this needs no Python
binding package. The filter is built and loaded in the sandbox's init right before it starts
serving; it is inherited by every process in the sandbox and cannot be removed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Callable

from corral.runtime.namespace import policy

SCMP_ACT_KILL_PROCESS = 0x80000000
SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_FLTATR_ACT_BADARCH = 2
SCMP_FLTATR_CTL_NNP = 3
SCMP_CMP_MASKED_EQ = 7
_NR_SCMP_ERROR = -1


def SCMP_ACT_ERRNO(err: int) -> int:  # noqa: N802 - mirrors the C macro
    return 0x00050000 | (err & 0xFFFF)


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


class SeccompError(RuntimeError):
    pass


def _load_lib() -> ctypes.CDLL:
    name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError as exc:
        raise SeccompError(f"libseccomp is not installed ({exc}); apt-get install libseccomp2") from exc
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                           ctypes.c_uint, ctypes.POINTER(_ArgCmp)]
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    return lib


_lib: ctypes.CDLL | None = None


def _libseccomp() -> ctypes.CDLL:
    global _lib
    if _lib is None:
        _lib = _load_lib()
    return _lib


def _resolve(name: str) -> int | None:
    nr = _libseccomp().seccomp_syscall_resolve_name(name.encode())
    return None if nr == _NR_SCMP_ERROR else nr


def _add(ctx: int, action: int, nr: int, rule: policy.ArgRule | None = None) -> None:
    lib = _libseccomp()
    if rule is None:
        rc = lib.seccomp_rule_add_array(ctx, action, nr, 0, None)
    else:
        cmp = (_ArgCmp * 1)(_ArgCmp(rule.arg, SCMP_CMP_MASKED_EQ, rule.mask, rule.value))
        rc = lib.seccomp_rule_add_array(ctx, action, nr, 1, cmp)
    if rc < 0:
        raise SeccompError(f"seccomp_rule_add nr={nr} {rule}: {os.strerror(-rc)}")


def _action(value: str | int) -> int:
    return SCMP_ACT_ALLOW if value == "allow" else SCMP_ACT_ERRNO(int(value))


def _new_ctx(default_action: int) -> int:
    lib = _libseccomp()
    ctx = lib.seccomp_init(default_action)
    if not ctx:
        raise SeccompError("seccomp_init failed")
    try:
        # Any syscall made through a foreign ABI (i386 int 0x80, x32) kills the process:
        # their numbers differ, so the allowlist would not mean what it says.
        _check(lib.seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS))
        # no_new_privs is set explicitly by the caller before loading.
        _check(lib.seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0))
    except BaseException:
        lib.seccomp_release(ctx)
        raise
    return ctx


def build_allowlist() -> int:
    """The main filter: default EPERM, the policy's allowlist and argument-gated allows."""
    lib = _libseccomp()
    ctx = _new_ctx(SCMP_ACT_ERRNO(policy.DEFAULT_ERRNO))
    try:
        for name in policy.allowed_syscall_names():
            nr = _resolve(name)
            if nr is not None:
                _add(ctx, SCMP_ACT_ALLOW, nr)
        for name, err in policy.FIXED_ERRNO.items():
            nr = _resolve(name)
            if nr is not None:
                _add(ctx, SCMP_ACT_ERRNO(err), nr)
        for rule in policy.ALLOW_RULES:
            nr = _resolve(rule.syscall)
            if nr is not None:
                _add(ctx, _action(rule.action), nr, rule)
    except BaseException:
        lib.seccomp_release(ctx)
        raise
    return ctx


def build_denylist() -> int:
    """The stacked filter: default allow, refusing the policy's argument-specific calls."""
    lib = _libseccomp()
    ctx = _new_ctx(SCMP_ACT_ALLOW)
    try:
        for rule in policy.DENY_RULES:
            nr = _resolve(rule.syscall)
            if nr is not None:
                _add(ctx, _action(rule.action), nr, rule)
    except BaseException:
        lib.seccomp_release(ctx)
        raise
    return ctx


def _check(rc: int) -> None:
    if rc < 0:
        raise SeccompError(os.strerror(-rc))


def load() -> None:
    """Install both filters on the calling process (no_new_privs must already be set)."""
    lib = _libseccomp()
    for build in (build_denylist, build_allowlist):
        ctx = build()
        try:
            _check(lib.seccomp_load(ctx))
        finally:
            lib.seccomp_release(ctx)


def export_bpf(build: Callable[[], int] = build_allowlist) -> bytes:
    """A compiled BPF program, for inspection and size checks."""
    lib = _libseccomp()
    ctx = build()
    r, w = os.pipe()
    try:
        _check(lib.seccomp_export_bpf(ctx, w))
        os.close(w)
        w = -1
        chunks = []
        while chunk := os.read(r, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        lib.seccomp_release(ctx)
        os.close(r)
        if w >= 0:
            os.close(w)
