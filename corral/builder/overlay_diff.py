"""Apply an overlayfs upper directory (what one RUN step changed) to a layer tree.

A layer tree starts as a hard-linked copy of its parent (`cp -al`), so its files are shared
with the parent: nothing here ever writes into an existing file. Every changed file is
unlinked and written anew; only directories, which `cp -al` copies, get metadata changes.

The upper directory speaks overlayfs: a character device 0:0 is a whiteout (the path was
deleted), a directory with the xattr `trusted.overlay.opaque=y` replaces the lower directory
instead of merging with it. Owners are shifted back from the build sandbox's host uid range to
the sandbox's own ids. `trusted.*` and `security.*` xattrs are dropped (overlay bookkeeping,
and file capabilities that name the build sandbox's uid range); `user.*` ones are kept.
Paths the runtime writes into every sandbox (/etc/hostname, hosts, resolv.conf, the template
marker) and the builder's own scratch are never taken into a layer.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from dataclasses import dataclass, field

from corral.errors import CorralError

OPAQUE_XATTR = "trusted.overlay.opaque"
REDIRECT_XATTR = "trusted.overlay.redirect"
METACOPY_XATTR = "trusted.overlay.metacopy"
UIDS = 65536
NOBODY = 65534

# Relative to the tree root. Directories listed here keep existing but never take content.
EXCLUDED_FILES = frozenset({"etc/hostname", "etc/hosts", "etc/resolv.conf", "etc/corral-template"})
EXCLUDED_TREES = frozenset({"proc", "sys", "dev"})
SCRATCH_DIR = ".corral-build"     # the builder's per-step files (CA bundle); see sandbox.py


class DiffError(CorralError, RuntimeError):
    pass


@dataclass
class DiffStats:
    written: int = 0
    deleted: int = 0
    skipped: list[str] = field(default_factory=list)


def _shift(ident: int, uid_base: int) -> int:
    return ident - uid_base if uid_base <= ident < uid_base + UIDS else NOBODY


def _xattrs(path: str) -> dict[str, bytes]:
    out = {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return out
    for name in names:
        if name.startswith("user."):
            try:
                out[name] = os.getxattr(path, name, follow_symlinks=False)
            except OSError:
                pass
    return out


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _has_xattr(path: str, name: str) -> bytes | None:
    try:
        return os.getxattr(path, name, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in (errno.ENODATA, errno.ENOTSUP):
            return None
        raise


def _apply_meta(dst: str, st: os.stat_result, uid_base: int, xattrs: dict[str, bytes]) -> None:
    os.lchown(dst, _shift(st.st_uid, uid_base), _shift(st.st_gid, uid_base))
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(dst, stat.S_IMODE(st.st_mode))      # after chown: chown clears set-id bits
    for name, value in xattrs.items():
        try:
            os.setxattr(dst, name, value, follow_symlinks=False)
        except OSError:
            pass
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _write_entry(src: str, dst: str, st: os.stat_result, uid_base: int, stats: DiffStats) -> None:
    """Create `dst` (which does not exist) as a copy of the non-directory `src`."""
    if _has_xattr(src, METACOPY_XATTR) is not None:
        raise DiffError(f"{src}: metadata-only copy-up is not supported (overlay metacopy=on)")
    mode = st.st_mode
    if stat.S_ISREG(mode):
        with open(src, "rb") as fin:
            fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as fout:
                shutil.copyfileobj(fin, fout, 1 << 20)
    elif stat.S_ISLNK(mode):
        os.symlink(os.readlink(src), dst)
    elif stat.S_ISFIFO(mode):
        os.mkfifo(dst, 0o600)
    else:
        stats.skipped.append(dst)                    # sockets, device nodes: not template content
        return
    _apply_meta(dst, st, uid_base, _xattrs(src))
    stats.written += 1


def apply(upper: str, tree: str, uid_base: int) -> DiffStats:
    """Make `tree` equal to (its content overlaid with) `upper`."""
    stats = DiffStats()
    _apply_dir(upper, tree, "", uid_base, stats)
    return stats


def _apply_dir(upper_dir: str, tree_dir: str, rel: str, uid_base: int, stats: DiffStats) -> None:
    with os.scandir(upper_dir) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        name_rel = f"{rel}{entry.name}"
        src = entry.path
        dst = os.path.join(tree_dir, entry.name)
        st = os.lstat(src)
        if name_rel in EXCLUDED_FILES or name_rel == SCRATCH_DIR or (rel and rel.split("/")[0] in EXCLUDED_TREES):
            continue
        if _is_whiteout(st):
            if os.path.lexists(dst):
                _remove(dst)
                stats.deleted += 1
            continue
        if stat.S_ISDIR(st.st_mode):
            if _has_xattr(src, REDIRECT_XATTR) is not None:
                raise DiffError(f"{name_rel}: renamed lower directory (overlay redirect_dir=on) is not supported")
            opaque = _has_xattr(src, OPAQUE_XATTR) == b"y"
            try:
                dst_st = os.lstat(dst)
            except FileNotFoundError:
                dst_st = None
            if dst_st is not None and (opaque or not stat.S_ISDIR(dst_st.st_mode)):
                _remove(dst)
                dst_st = None
            if dst_st is None:
                os.mkdir(dst, 0o700)
            if name_rel not in EXCLUDED_TREES:
                _apply_dir(src, dst, name_rel + "/", uid_base, stats)
            _apply_meta(dst, st, uid_base, _xattrs(src))
            continue
        if os.path.lexists(dst):
            _remove(dst)        # unlink, never write through a link shared with the parent layer
        _write_entry(src, dst, st, uid_base, stats)


def _remove(path: str) -> None:
    st = os.lstat(path)
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)
