"""COPY/ADD and WORKDIR: host-side writes into a layer tree, always resolved inside it.

Sources come from the checked build context (`context.py`); destinations are resolved with
`rootpath.resolve`, so a symlink an earlier RUN step planted (`/app -> /etc`) leads to the
tree's own /etc and never to the host's. Existing files are unlinked, never overwritten in
place, because they may be hard links shared with the parent layer.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat

from corral.errors import InvalidRequest
from corral.builder import rootpath
from corral.builder.context import BuildContext, Source


class CopyError(InvalidRequest):
    pass


def _read_tree_file(tree: str, path: str) -> list[list[str]]:
    try:
        host = rootpath.resolve(tree, path)
        fd = os.open(host, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except (OSError, rootpath.RootPathError):
        return []
    with os.fdopen(fd, encoding="utf-8", errors="replace") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return []
        return [line.split(":") for line in f.read(1 << 20).splitlines()]


def lookup_owner(tree: str, spec: str) -> tuple[int, int]:
    """`user[:group]` (names or ids) as the tree's /etc/passwd and /etc/group define them."""
    user, _, group = spec.partition(":")
    passwd = _read_tree_file(tree, "/etc/passwd")
    uid = gid = None
    if user.isdigit():
        uid = int(user)
    else:
        for row in passwd:
            if len(row) >= 4 and row[0] == user and row[2].isdigit() and row[3].isdigit():
                uid, gid = int(row[2]), int(row[3])
                break
        if uid is None:
            raise CopyError(f"--chown: no user {user!r} in the image's /etc/passwd")
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            gid = next((int(r[2]) for r in _read_tree_file(tree, "/etc/group")
                        if len(r) >= 3 and r[0] == group and r[2].isdigit()), None)
            if gid is None:
                raise CopyError(f"--chown: no group {group!r} in the image's /etc/group")
    if gid is None:
        gid = uid
    if not (0 <= uid < 65536 and 0 <= gid < 65536):
        raise CopyError(f"--chown {spec}: ids must be below 65536")
    return uid, gid


def make_workdir(tree: str, path: str) -> None:
    host = rootpath.resolve(tree, path, create_dirs=True)
    if not os.path.lexists(host):
        os.mkdir(host, 0o755)
    elif not os.path.isdir(host):
        raise CopyError(f"WORKDIR {path}: exists and is not a directory")


def copy_into(ctx: BuildContext, sources: list[Source], tree: str, dest: str, *,
              owner: tuple[int, int] = (0, 0), mode: int | None = None) -> int:
    """Copy sources to `dest` (absolute, in-image) with Docker's rules; return files written."""
    to_dir = dest.endswith("/") or len(sources) > 1
    if not to_dir and not sources[0].is_dir:
        try:
            existing = rootpath.resolve(tree, dest)
            to_dir = os.path.isdir(existing) and not os.path.islink(existing)
        except rootpath.RootPathError:
            pass
    count = 0
    for source in sources:
        if source.is_dir:
            base = dest
        elif to_dir:
            base = posixpath.join(dest, posixpath.basename(source.rel))
        else:
            base = dest
        for rel, host, st in ctx.walk(source):
            target = posixpath.normpath(posixpath.join(base, rel)) if rel else posixpath.normpath(base)
            _put(tree, target, host, st, owner, mode)
            count += 1
        if source.is_dir:
            _ensure_dir(tree, posixpath.normpath(base), owner)
    return count


def _ensure_dir(tree: str, target: str, owner: tuple[int, int]) -> str:
    host = rootpath.resolve(tree, target, create_dirs=True)
    if os.path.lexists(host) and not os.path.isdir(host):
        os.unlink(host)
    if not os.path.lexists(host):
        os.mkdir(host, 0o755)
        os.lchown(host, *owner)
    return host


def _put(tree: str, target: str, src: os.PathLike[str] | str, st: os.stat_result,
         owner: tuple[int, int], mode: int | None) -> None:
    if stat.S_ISDIR(st.st_mode):
        host = _ensure_dir(tree, target, owner)
        os.lchown(host, *owner)
        os.chmod(host, mode if mode is not None else stat.S_IMODE(st.st_mode))
        return
    parent = rootpath.resolve(tree, posixpath.dirname(target) or "/", create_dirs=True)
    if not os.path.isdir(parent) or os.path.islink(parent):
        parent = _ensure_dir(tree, posixpath.dirname(target), owner)
    host = os.path.join(parent, posixpath.basename(target))
    if os.path.lexists(host):
        if os.path.isdir(host) and not os.path.islink(host):
            raise CopyError(f"cannot copy a file over the directory {target}")
        os.unlink(host)                  # never write through a hard link shared with the parent layer
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src), host)
        os.lchown(host, *owner)
        return
    with open(src, "rb") as fin:
        fd = os.open(host, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
    os.lchown(host, *owner)
    os.chmod(host, mode if mode is not None else stat.S_IMODE(st.st_mode) & 0o777)
