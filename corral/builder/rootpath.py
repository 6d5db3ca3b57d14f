"""Resolve a path *inside* a layer tree on the host, as the sandbox would see it.

A layer tree is content that earlier RUN steps (untrusted code) wrote. When the builder writes
into it from the host (COPY, WORKDIR), a symlink such as `/app -> /etc` must lead to the tree's
/etc, never the host's. Resolution therefore walks one component at a time with lstat and
re-roots every symlink at the tree, like a chroot would; `..` never climbs above the tree.
Nothing else writes a layer tree while the builder does (its build sandbox is gone by then), so
the resolved path stays valid while it is used.
"""

from __future__ import annotations

import os
import posixpath
import stat

from corral.errors import InvalidRequest

MAX_SYMLINKS = 40


class RootPathError(InvalidRequest):
    pass


def resolve(root: str, path: str, *, follow_last: bool = True, create_dirs: bool = False,
            owner: tuple[int, int] = (0, 0)) -> str:
    """The host path that `path` (absolute, inside the tree) names.

    Intermediate components must be directories (or symlinks to them, followed inside the
    tree); with `create_dirs`, missing ones are made (mode 0755, `owner`). The last component
    need not exist; it is followed when it is a symlink only if `follow_last`.
    """
    if not path.startswith("/"):
        raise RootPathError(f"{path!r} is not absolute")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    done: list[str] = []             # resolved components below root, all real directories
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        host = os.path.join(root, *done, part)
        last = not parts
        try:
            st = os.lstat(host)
        except FileNotFoundError:
            if last:
                done.append(part)
                break
            if not create_dirs:
                raise RootPathError(f"{posixpath.join('/', *done, part)} does not exist") from None
            os.mkdir(host, 0o755)
            os.lchown(host, *owner)
            done.append(part)
            continue
        if stat.S_ISLNK(st.st_mode) and (not last or follow_last):
            links += 1
            if links > MAX_SYMLINKS:
                raise RootPathError(f"too many levels of symlinks in {path!r}")
            target = os.readlink(host)
            if target.startswith("/"):
                done = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        if not last and not stat.S_ISDIR(st.st_mode):
            raise RootPathError(f"{posixpath.join('/', *done, part)} is not a directory")
        done.append(part)
    return os.path.join(root, *done)


def remove(host: str) -> None:
    """Delete whatever is at `host` (a resolved path): file, link or whole directory."""
    try:
        st = os.lstat(host)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        import shutil

        shutil.rmtree(host)
    else:
        os.unlink(host)
