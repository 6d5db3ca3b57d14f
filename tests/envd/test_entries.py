"""EntryInfo: Go-style permission strings and RFC 3339 times."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from corral.envd.entries import entry_info, go_permissions, rfc3339_ns


def test_go_permission_strings() -> None:
    assert go_permissions(stat.S_IFREG | 0o644) == "-rw-r--r--"
    assert go_permissions(stat.S_IFDIR | 0o755) == "drwxr-xr-x"
    assert go_permissions(stat.S_IFLNK | 0o777) == "Lrwxrwxrwx"
    assert go_permissions(stat.S_IFDIR | stat.S_ISVTX | 0o777) == "dtrwxrwxrwx"
    assert go_permissions(stat.S_IFREG | stat.S_ISUID | 0o755) == "urwxr-xr-x"
    assert go_permissions(stat.S_IFCHR | 0o666) == "Dcrw-rw-rw-"
    assert go_permissions(stat.S_IFIFO | 0o600) == "prw-------"


def test_rfc3339() -> None:
    assert rfc3339_ns(0) == "1970-01-01T00:00:00Z"
    assert rfc3339_ns(1_500_000_000_123_000_000) == "2017-07-14T02:40:00.123Z"


def test_entry_info(tmp_path: Path) -> None:
    f = tmp_path / "f.txt"
    f.write_bytes(b"12345")
    os.symlink("f.txt", tmp_path / "l")
    e = entry_info(str(f))
    assert e["type"] == "FILE_TYPE_FILE" and e["size"] == "5" and e["name"] == "f.txt"
    # As E2B's envd: a link to a file is a FILE with its absolute target; only a dangling link is a SYMLINK.
    link = entry_info(str(tmp_path / "l"))
    assert link["type"] == "FILE_TYPE_FILE" and link["symlinkTarget"] == str(f) and link["isSymlink"]
    os.symlink(".", tmp_path / "d")
    assert entry_info(str(tmp_path / "d"))["type"] == "FILE_TYPE_DIRECTORY"
    os.symlink("gone", tmp_path / "dangling")
    assert entry_info(str(tmp_path / "dangling"))["type"] == "FILE_TYPE_SYMLINK"
    assert "metadata" not in e
    os.setxattr(f, "user.e2b.author", b"mish")
    os.setxattr(f, "user.other", b"not ours")
    assert entry_info(str(f))["metadata"] == {"author": "mish"}
    assert entry_info(str(tmp_path))["type"] == "FILE_TYPE_DIRECTORY"
