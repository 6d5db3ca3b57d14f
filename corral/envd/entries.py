"""EntryInfo: how one file is described to the SDK (types, Go-style permission strings, times)."""

from __future__ import annotations

import datetime as _dt
import os
import stat
from typing import Any

from corral.envd import xattrs
from corral.guest.users import NameCache

FILE_TYPE_FILE = "FILE_TYPE_FILE"
FILE_TYPE_DIRECTORY = "FILE_TYPE_DIRECTORY"
FILE_TYPE_SYMLINK = "FILE_TYPE_SYMLINK"

# Go's os.FileMode.String() prefix letters, in Go's bit order; envd reports exactly these.
_GO_TYPE_LETTERS: tuple[tuple[Any, str], ...] = (
    (stat.S_ISDIR, "d"),
    (stat.S_ISLNK, "L"),
    (lambda m: stat.S_ISBLK(m), "D"),
    (stat.S_ISFIFO, "p"),
    (stat.S_ISSOCK, "S"),
)


def go_permissions(mode: int) -> str:
    prefix = ""
    for test, letter in _GO_TYPE_LETTERS:
        if test(mode):
            prefix += letter
    if stat.S_ISCHR(mode):
        prefix += "Dc"
    if mode & stat.S_ISUID:
        prefix += "u"
    if mode & stat.S_ISGID:
        prefix += "g"
    if mode & stat.S_ISVTX:
        prefix += "t"
    if not prefix:
        prefix = "-"
    rwx = "".join(ch if mode & (1 << (8 - i)) else "-" for i, ch in enumerate("rwxrwxrwx"))
    return prefix + rwx


def rfc3339_ns(ns: int) -> str:
    seconds, frac = divmod(ns, 1_000_000_000)
    base = _dt.datetime.fromtimestamp(seconds, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        return f"{base}.{frac:09d}".rstrip("0") + "Z"
    return base + "Z"


def entry_info(path: str, names: NameCache | None = None, st: os.stat_result | None = None) -> dict[str, Any]:
    """Describe `path` as envd does: size, mode and owner of the entry itself (lstat), but a
    symlink's `type` is that of what it points to (FILE for a link to a file), with
    `symlinkTarget` absolute; only a dangling link is a SYMLINK. `metadata` is the file's
    `user.e2b.*` attributes, when it has any."""
    names = names or NameCache()
    if st is None:
        st = os.lstat(path)
    mode = st.st_mode
    info: dict[str, Any] = {
        "name": os.path.basename(path.rstrip("/")) or "/",
        "path": path,
        "size": str(st.st_size),
        "mode": stat.S_IMODE(mode) & 0o777,
        "permissions": go_permissions(mode),
        "owner": names.user(st.st_uid),
        "group": names.group(st.st_gid),
        "modifiedTime": rfc3339_ns(st.st_mtime_ns),
    }
    if stat.S_ISLNK(mode):
        info["isSymlink"] = True
        info["symlinkTarget"] = os.path.realpath(path)
        try:
            target_mode = os.stat(path).st_mode
        except OSError:
            info["type"] = FILE_TYPE_SYMLINK
        else:
            info["type"] = FILE_TYPE_DIRECTORY if stat.S_ISDIR(target_mode) else FILE_TYPE_FILE
    elif stat.S_ISDIR(mode):
        info["type"] = FILE_TYPE_DIRECTORY
    else:
        info["type"] = FILE_TYPE_FILE
    if not stat.S_ISLNK(mode):
        metadata = xattrs.read(path)
        if metadata:
            info["metadata"] = metadata
    return info
