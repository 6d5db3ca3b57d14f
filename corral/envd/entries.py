"""EntryInfo: how one file is described to the SDK (types, Go-style permission strings, times)."""

from __future__ import annotations

import datetime as _dt
import os
import stat
from typing import Any

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
    """Describe `path` without following a final symlink (lstat), as envd does."""
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
        info["type"] = FILE_TYPE_SYMLINK
        info["isSymlink"] = True
        info["symlinkTarget"] = os.path.realpath(path)
    elif stat.S_ISDIR(mode):
        info["type"] = FILE_TYPE_DIRECTORY
    else:
        info["type"] = FILE_TYPE_FILE
    return info
