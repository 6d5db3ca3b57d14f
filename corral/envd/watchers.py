"""Directory watches for the SDK: the WatchDir stream and the polled CreateWatcher family.

Polled watchers buffer events between GetWatcherEvents calls; both the number of watchers and
the buffered events are capped so that a client that never polls cannot grow the daemon.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import stat
from collections.abc import Callable
from typing import Any

from corral.envd.connect import from_os_error
from corral.wire.framing import ConnectError
from corral.envd import staging
from corral.envd.creds import UserExecutor
from corral.envd.entries import entry_info
from corral.envd.inotify import DirWatcher
from corral.guest.users import User

MAX_WATCHERS = 128
MAX_BUFFERED_EVENTS = 10_000


def _check_dir(path: str) -> None:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise from_os_error(exc, path) from None
    if not stat.S_ISDIR(st.st_mode):
        raise ConnectError("invalid_argument", f"path {path} is not a directory")


def _prepare(path: str, recursive: bool) -> DirWatcher:
    _check_dir(path)
    watcher = DirWatcher(path, recursive)
    try:
        watcher.add_tree(path)
    except OSError as exc:
        watcher.close()
        raise from_os_error(exc, path) from None
    return watcher


class Watch:
    """One running watch delivering FilesystemEvent dicts to a queue."""

    def __init__(self, watcher: DirWatcher, include_entry: bool, executor: UserExecutor, user: User,
                 on_close: Callable[["Watch"], None] = lambda _w: None) -> None:
        self.watcher = watcher
        self._on_close = on_close
        self.include_entry = include_entry
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.overflowed = False
        self._executor = executor
        self._user = user
        self._tasks: set[asyncio.Task[Any]] = set()

    def start(self) -> None:
        self.watcher.start(asyncio.get_running_loop(), self._on_event, self._add_dir)

    def _add_dir(self, path: str) -> None:
        # New subdirectories are added in the user's identity, like the initial tree.
        task = asyncio.ensure_future(self._executor.run(self._user, self._safe_add, path))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _safe_add(self, path: str) -> None:
        try:
            if not self.watcher.closed:
                self.watcher.add_tree(path)
        except OSError:
            pass

    def _on_event(self, name: str, kind: str, full: str) -> None:
        if staging.is_hidden(full):
            return   # an upload's anonymous staged copy, not a file anyone can see
        if self.events.qsize() >= MAX_BUFFERED_EVENTS:
            self.overflowed = True
            return
        event: dict[str, Any] = {"name": name, "type": kind}
        if self.include_entry:
            try:
                event["entry"] = entry_info(full)
            except OSError:
                pass
        self.events.put_nowait(event)

    async def settle(self) -> None:
        """Take in what the kernel queued so far, and finish watching directories it announced."""
        self.watcher.drain_now()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
            self.watcher.drain_now()

    def drain(self) -> list[dict[str, Any]]:
        out = []
        while not self.events.empty():
            out.append(self.events.get_nowait())
        return out

    def close(self) -> None:
        self.watcher.close()
        for task in self._tasks:
            task.cancel()
        self._on_close(self)


class WatchRegistry:
    def __init__(self, executor: UserExecutor) -> None:
        self.executor = executor
        self.polled: dict[str, Watch] = {}
        self.active: set[Watch] = set()   # polled and streamed

    async def open(self, user: User, path: str, recursive: bool, include_entry: bool) -> Watch:
        watcher = await self.executor.run(user, _prepare, path, recursive)
        watch = Watch(watcher, include_entry, self.executor, user, on_close=self.active.discard)
        self.active.add(watch)
        watch.start()
        return watch

    async def settle(self) -> None:
        """After envd itself changed the tree (MakeDir): every watch has seen it, and recursive
        watches already cover new directories, before the call answers. Without this a client
        that makes a directory and writes into it at once could miss the write's events."""
        for watch in list(self.active):
            await watch.settle()

    async def create(self, user: User, path: str, recursive: bool, include_entry: bool) -> str:
        if len(self.polled) >= MAX_WATCHERS:
            raise ConnectError("resource_exhausted", f"too many watchers (limit {MAX_WATCHERS})")
        watch = await self.open(user, path, recursive, include_entry)
        watcher_id = secrets.token_hex(8)
        self.polled[watcher_id] = watch
        return watcher_id

    async def events(self, watcher_id: str) -> list[dict[str, Any]]:
        watch = self.polled.get(watcher_id)
        if watch is None:
            raise ConnectError("not_found", f"watcher with id {watcher_id} not found")
        await watch.settle()   # events of changes made before this call are in the answer
        if watch.overflowed:
            watch.overflowed = False
            watch.drain()
            raise ConnectError("resource_exhausted", "too many unread events; the buffer was dropped")
        return watch.drain()

    def remove(self, watcher_id: str) -> None:
        watch = self.polled.pop(watcher_id, None)
        if watch is None:
            raise ConnectError("not_found", f"watcher with id {watcher_id} not found")
        watch.close()

    def close_all(self) -> None:
        for watch in self.polled.values():
            watch.close()
        self.polled.clear()
