"""Recursive directory watching with inotify, through ctypes (no third-party extension).

One inotify instance per watcher keeps watchers independent: removing one can never disturb
another's watch descriptors.  Subdirectories created later are added as they appear, which is
what "recursive" means to the SDK.  Watches are added in the caller's identity, so a user can
only watch what it can read.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import os
import struct
from typing import Callable

IN_ACCESS = 0x001
IN_MODIFY = 0x002
IN_ATTRIB = 0x004
IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_ISDIR = 0x40000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC

WATCH_MASK = (IN_MODIFY | IN_ATTRIB | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
              | IN_DELETE_SELF | IN_MOVE_SELF)

_EVENT_HEADER = struct.Struct("iIII")

_libc = ctypes.CDLL(None, use_errno=True)
_libc.inotify_init1.argtypes = [ctypes.c_int]
_libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
_libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]

# The SDK's event types, mapped the way Go's fsnotify (used by envd) maps inotify bits.
EVENT_CREATE = "EVENT_TYPE_CREATE"
EVENT_WRITE = "EVENT_TYPE_WRITE"
EVENT_REMOVE = "EVENT_TYPE_REMOVE"
EVENT_RENAME = "EVENT_TYPE_RENAME"
EVENT_CHMOD = "EVENT_TYPE_CHMOD"


def _event_types(mask: int) -> list[str]:
    out = []
    if mask & (IN_CREATE | IN_MOVED_TO):
        out.append(EVENT_CREATE)
    if mask & IN_MODIFY:
        out.append(EVENT_WRITE)
    if mask & (IN_DELETE | IN_DELETE_SELF):
        out.append(EVENT_REMOVE)
    if mask & (IN_MOVED_FROM | IN_MOVE_SELF):
        out.append(EVENT_RENAME)
    if mask & IN_ATTRIB:
        out.append(EVENT_CHMOD)
    return out


class DirWatcher:
    """An inotify instance watching `root` (and, if recursive, every directory below it).

    Event names are paths relative to `root`, as envd reports them.  `on_event(name, type,
    full_path)` is called on the event loop.
    """

    def __init__(self, root: str, recursive: bool) -> None:
        self.root = root.rstrip("/") or "/"
        self.recursive = recursive
        fd = _libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        self.fd = fd
        self._dirs: dict[int, str] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closed = False

    def add_tree(self, path: str) -> None:
        """Add `path` (and subdirectories if recursive). Blocking; run as the requesting user."""
        self._add_one(path)
        if not self.recursive:
            return
        for dirpath, dirnames, _files in os.walk(path, followlinks=False):
            for name in dirnames:
                full = os.path.join(dirpath, name)
                if not os.path.islink(full):
                    try:
                        self._add_one(full)
                    except OSError:
                        continue

    def _add_one(self, path: str) -> None:
        wd = _libc.inotify_add_watch(self.fd, os.fsencode(path), WATCH_MASK | IN_ONLYDIR | IN_DONT_FOLLOW)
        if wd < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), path)
        self._dirs[wd] = path

    def start(self, loop: asyncio.AbstractEventLoop, on_event: Callable[[str, str, str], None],
              add_dir: Callable[[str], None]) -> None:
        """Begin delivering events; `add_dir` adds a newly created directory in the right identity."""
        self._loop = loop
        self._on_event = on_event
        self._add_dir = add_dir
        loop.add_reader(self.fd, self._readable)

    def drain_now(self) -> None:
        """Deliver every event the kernel has queued so far, now (non-blocking), so that a caller
        who changed the tree can rely on the watcher having seen it."""
        while not self.closed and self._loop is not None and self._read_once():
            pass

    def _readable(self) -> None:
        self._read_once()

    def _read_once(self) -> bool:
        try:
            data = os.read(self.fd, 64 * 1024)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EINTR):
                return False
            raise
        self._dispatch(data)
        return bool(data)

    def _dispatch(self, data: bytes) -> None:
        offset = 0
        while offset + _EVENT_HEADER.size <= len(data):
            wd, mask, _cookie, length = _EVENT_HEADER.unpack_from(data, offset)
            raw = data[offset + _EVENT_HEADER.size: offset + _EVENT_HEADER.size + length]
            offset += _EVENT_HEADER.size + length
            name = os.fsdecode(raw.split(b"\x00", 1)[0])
            if mask & IN_IGNORED:
                self._dirs.pop(wd, None)
                continue
            directory = self._dirs.get(wd)
            if directory is None:
                continue
            full = os.path.join(directory, name) if name else directory
            if full == self.root and mask & (IN_DELETE_SELF | IN_MOVE_SELF):
                pass  # the root itself went away: report it below
            elif not name:
                continue  # self-events of subdirectories duplicate their parent's event
            rel = os.path.relpath(full, self.root) if full != self.root else os.path.basename(self.root)
            if self.recursive and mask & IN_ISDIR and mask & (IN_CREATE | IN_MOVED_TO):
                self._add_dir(full)
            for kind in _event_types(mask):
                self._on_event(rel, kind, full)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self.fd)
        os.close(self.fd)
