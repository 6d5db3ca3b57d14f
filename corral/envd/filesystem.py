"""filesystem.Filesystem unary RPCs: Stat, MakeDir, Move, ListDir, Remove.

These functions are synchronous on purpose: the app runs them in a UserExecutor worker that
has taken on the requesting user's filesystem identity, so the kernel makes every permission
decision and new files belong to that user.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from typing import Any

from corral.envd.connect import from_os_error
from corral.wire.framing import ConnectError
from corral.envd.entries import entry_info
from corral.guest.users import NameCache

# A listing is built in memory before it is sent; cap it so one call cannot exhaust the daemon.
MAX_LIST_ENTRIES = 200_000


def stat_entry(path: str) -> dict[str, Any]:
    try:
        return {"entry": entry_info(path)}
    except OSError as exc:
        raise from_os_error(exc, path) from None


def make_dir(path: str) -> dict[str, Any]:
    try:
        os.makedirs(path)
    except FileExistsError:
        raise ConnectError("already_exists", f"directory {path} already exists") from None
    except OSError as exc:
        raise from_os_error(exc, path) from None
    return {"entry": entry_info(path)}


def move(source: str, destination: str) -> dict[str, Any]:
    try:
        os.lstat(source)
        parent = os.path.dirname(destination)
        if parent:
            os.makedirs(parent, exist_ok=True)
        os.rename(source, destination)
        return {"entry": entry_info(destination)}
    except OSError as exc:
        raise from_os_error(exc, source) from None


def remove(path: str) -> dict[str, Any]:
    """Remove a file, link or tree; a path that is already gone is not an error (as in envd)."""
    try:
        st = os.lstat(path)
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise from_os_error(exc, path) from None
    return {}


def list_dir(path: str, depth: int) -> dict[str, Any]:
    """Entries below `path` up to `depth` levels (1 = direct children); symlinks are not followed."""
    if depth <= 0:
        depth = 1
    try:
        st = os.stat(path)  # the listed directory itself may be reached through a symlink
    except OSError as exc:
        raise from_os_error(exc, path) from None
    if not stat.S_ISDIR(st.st_mode):
        raise ConnectError("invalid_argument", f"path {path} is not a directory")
    names = NameCache()
    entries: list[dict[str, Any]] = []

    def walk(directory: str, level: int) -> None:
        try:
            with os.scandir(directory) as it:
                children = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            if directory == path:
                raise from_os_error(exc, path) from None
            return  # an unreadable subdirectory is listed but not descended into
        for child in children:
            if len(entries) >= MAX_LIST_ENTRIES:
                raise ConnectError("resource_exhausted", f"more than {MAX_LIST_ENTRIES} entries")
            full = os.path.join(directory, child.name)
            try:
                cst = child.stat(follow_symlinks=False)
                entries.append(entry_info(full, names, cst))
            except OSError as exc:
                if exc.errno == errno.ENOENT:
                    continue  # removed while we listed
                raise from_os_error(exc, full) from None
            if level < depth and stat.S_ISDIR(cst.st_mode):
                walk(full, level + 1)

    walk(path, 1)
    return {"entries": entries}
