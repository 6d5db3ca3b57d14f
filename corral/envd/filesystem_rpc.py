"""The `filesystem.Filesystem` service: stat, list, make, move, remove, and watch.

Every operation runs in the calling user's filesystem identity on a `creds.UserExecutor`
thread; the operations themselves are `filesystem`, the watchers `watchers`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from corral.envd import filesystem as fs
from corral.envd.connect import get_bool, get_int, get_str
from corral.envd.creds import UserExecutor
from corral.envd.rpc import Call, Json, ServerStream, Unary
from corral.envd.watchers import WatchRegistry
from corral.guest.users import User
from corral.wire.framing import ConnectError


class FilesystemService:
    def __init__(self, executor: Callable[[], UserExecutor], watches: Callable[[], WatchRegistry]) -> None:
        # Getters: the worker threads and the inotify machinery start on first use.
        self._executor = executor
        self._watches = watches
        self.unary: dict[str, Unary] = {
            "/filesystem.Filesystem/Stat": self.stat,
            "/filesystem.Filesystem/MakeDir": self.make_dir,
            "/filesystem.Filesystem/Move": self.move,
            "/filesystem.Filesystem/ListDir": self.list_dir,
            "/filesystem.Filesystem/Remove": self.remove,
            "/filesystem.Filesystem/CreateWatcher": self.create_watcher,
            "/filesystem.Filesystem/GetWatcherEvents": self.get_watcher_events,
            "/filesystem.Filesystem/RemoveWatcher": self.remove_watcher,
        }
        self.streams: dict[str, ServerStream] = {
            "/filesystem.Filesystem/WatchDir": self.watch_dir,
        }

    async def stat(self, call: Call, msg: Json) -> Json:
        return await self._executor().run(call.user, fs.stat_entry, call.path(get_str(msg, "path")))

    async def make_dir(self, call: Call, msg: Json) -> Json:
        result = await self._executor().run(call.user, fs.make_dir, call.path(get_str(msg, "path")))
        await self._watches().settle()
        return result

    async def move(self, call: Call, msg: Json) -> Json:
        src = call.path(get_str(msg, "source"))
        dst = call.path(get_str(msg, "destination"))
        return await self._executor().run(call.user, fs.move, src, dst)

    async def list_dir(self, call: Call, msg: Json) -> Json:
        depth = get_int(msg, "depth", minimum=0, maximum=2**32 - 1)
        return await self._executor().run(call.user, fs.list_dir, call.path(get_str(msg, "path")), depth)

    async def remove(self, call: Call, msg: Json) -> Json:
        return await self._executor().run(call.user, fs.remove, call.path(get_str(msg, "path")))

    @staticmethod
    def _watch_args(call: Call, msg: Json) -> tuple[User, str, bool, bool]:
        return (call.user, call.path(get_str(msg, "path")),
                bool(get_bool(msg, "recursive")),
                bool(get_bool(msg, "includeEntry", "include_entry")))

    async def create_watcher(self, call: Call, msg: Json) -> Json:
        watcher_id = await self._watches().create(*self._watch_args(call, msg))
        return {"watcherId": watcher_id}

    async def get_watcher_events(self, call: Call, msg: Json) -> Json:
        return {"events": await self._watches().events(get_str(msg, "watcherId", "watcher_id"))}

    async def remove_watcher(self, call: Call, msg: Json) -> Json:
        self._watches().remove(get_str(msg, "watcherId", "watcher_id"))
        return {}

    async def watch_dir(self, call: Call, msg: Json) -> AsyncIterator[Json]:
        watch = await self._watches().open(*self._watch_args(call, msg))
        keepalive = call.keepalive()
        try:
            yield {"start": {}}
            while True:
                try:
                    event = await asyncio.wait_for(watch.events.get(), keepalive)
                except asyncio.TimeoutError:
                    yield {"keepalive": {}}
                    continue
                yield {"filesystem": event}
                if watch.overflowed:
                    raise ConnectError("resource_exhausted", "too many unread filesystem events")
        finally:
            watch.close()
