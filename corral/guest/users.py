"""Sandbox accounts, read straight from the sandbox's /etc/passwd and /etc/group.

The daemon runs inside the sandbox root with the host's NSS modules out of reach (and it must
not trust whatever NSS configuration a template ships), so it parses the two files itself.
`ETC_ROOT` exists so tests can point the lookups at a temporary directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from corral.wire.framing import ConnectError

ETC_ROOT = "/etc"

# PATH for commands when the request does not set one: the usual Debian login PATH.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int
    home: str
    shell: str
    groups: tuple[int, ...]  # supplementary groups, primary gid included


def _read_lines(name: str) -> list[list[str]]:
    try:
        with open(os.path.join(ETC_ROOT, name), encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except FileNotFoundError:
        return []
    rows = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        rows.append(line.split(":"))
    return rows


def _parse_id(text: str) -> int | None:
    return int(text) if text.isdigit() and len(text) <= 10 else None


def lookup_user(name: str) -> User:
    """Resolve a username; unknown names are an authentication failure, as in envd."""
    if not name or ":" in name or "\n" in name:
        raise ConnectError("unauthenticated", f"invalid username: {name!r}")
    for row in _read_lines("passwd"):
        if len(row) < 7 or row[0] != name:
            continue
        uid, gid = _parse_id(row[2]), _parse_id(row[3])
        if uid is None or gid is None:
            break
        groups = [gid]
        for grow in _read_lines("group"):
            if len(grow) < 4:
                continue
            members = [m for m in grow[3].split(",") if m]
            ggid = _parse_id(grow[2])
            if ggid is not None and name in members and ggid not in groups:
                groups.append(ggid)
        return User(name=name, uid=uid, gid=gid, home=row[5] or "/", shell=row[6], groups=tuple(groups))
    raise ConnectError("unauthenticated", f"invalid username: {name!r}")


def name_of_uid(uid: int) -> str:
    for row in _read_lines("passwd"):
        if len(row) >= 3 and _parse_id(row[2]) == uid:
            return row[0]
    return str(uid)


def name_of_gid(gid: int) -> str:
    for row in _read_lines("group"):
        if len(row) >= 3 and _parse_id(row[2]) == gid:
            return row[0]
    return str(gid)


class NameCache:
    """uid/gid -> name for one listing, so a 10 000-entry ListDir does not reread passwd each time."""

    def __init__(self) -> None:
        self._users: dict[int, str] = {}
        self._groups: dict[int, str] = {}

    def user(self, uid: int) -> str:
        if uid not in self._users:
            self._users[uid] = name_of_uid(uid)
        return self._users[uid]

    def group(self, gid: int) -> str:
        if gid not in self._groups:
            self._groups[gid] = name_of_gid(gid)
        return self._groups[gid]


def resolve_path(path: str, user: User, workdir: str | None = None) -> str:
    """Relative paths (and `~`) are relative to the user's home, as the SDK documents."""
    if not path:
        raise ConnectError("invalid_argument", "path is required")
    if "\x00" in path:
        raise ConnectError("invalid_argument", "path contains a NUL byte")
    if path == "~" or path.startswith("~/"):
        path = user.home + path[1:]
    if not path.startswith("/"):
        path = os.path.join(workdir or user.home, path)
    return os.path.normpath(path) if path != "/" else "/"
